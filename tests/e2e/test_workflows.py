"""The shipped GitHub workflows: valid against GitHub's schema, and their commands work.

The shell steps of each workflow are run here, in order, against a stack on the local
provider, with the workflow's expressions replaced by what GitHub would pass. Steps that
call GitHub's API (actions/github-script) are JavaScript and are not run here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import assert_no_canary, files_containing

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), ROOT / "examples" / "github" / "cloudsync.yml"]
BIN = Path(sys.executable).parent

STACK = """\
version: 1
stack: wf
targets:
  local: {provider: local}
principals:
  api: {}
defaults:
  labels: {owner: team-wf}
  rotation: 30d
secrets:
  - name: wf/token
    targets: [local]
    value: {env: WF_TOKEN}
    readers: [api]
"""


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid_for_github(workflow: Path) -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN)) or "check-jsonschema"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _expand(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr not in values:
            raise AssertionError(f"the test does not know the expression {expr!r}")
        return values[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def run_job(workflow: str, job: str, cwd: Path, values: dict[str, str], extra_env: dict[str, str]) -> dict[str, str]:
    """Run the shell steps of one job; return what they wrote to $GITHUB_OUTPUT."""
    spec: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
    outputs: dict[str, str] = {}
    output_file = cwd / "github_output"
    for step in spec["jobs"][job]["steps"]:
        script = step.get("run")
        if script is None or script.startswith("pip install"):
            continue
        output_file.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
        env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "GITHUB_OUTPUT": str(output_file),
                    "NO_COLOR": "1"})
        env.update({k: _expand(str(v), values) for k, v in (step.get("env") or {}).items()})
        env.update(extra_env)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{workflow}:{job}:{step.get('name')}: {proc.stdout}{proc.stderr}"
        for line in output_file.read_text().splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
    return outputs


@pytest.fixture
def repo(tmp_path: Path, write_stack: Callable[..., Path]) -> Path:
    write_stack(STACK, root=tmp_path / "repo" / "stack")
    return tmp_path / "repo"


def test_plan_then_apply_then_drift_workflows_on_the_local_provider(repo: Path, canary: str) -> None:
    key = "plan-key-for-the-workflow-test-0123456789"
    values = {
        "inputs.directory": "stack", "inputs.install": "cloudsync", "matrix.target": "local",
        "inputs.metadata-only || github.event.pull_request.head.repo.fork": "false",
        "secrets.plan-key": key, "secrets.fingerprint-key": "", "github.actor": "octocat",
        "inputs.plan-workflow": "cloudsync.yml", "steps.drift.outputs.exitcode": "",
    }
    env = {"WF_TOKEN": canary}

    matrix = json.loads(run_job("cloudsync-plan.yml", "targets", repo, values, env)["matrix"])
    assert matrix == {"stack": "wf", "include": [{"target": "local", "provider": "local", "secrets": 1}]}

    planned = run_job("cloudsync-plan.yml", "plan", repo, values, env)
    assert planned["exitcode"] == "2"  # changes to apply
    comment = (repo / "cloudsync-out" / "local.md").read_text()
    assert comment.startswith("<!-- cloudsync:plan stack=wf -->") and "`local:wf/token`" in comment
    assert (repo / "cloudsync-out" / "local.plan").is_file()

    run_job("cloudsync-apply.yml", "apply", repo, values, env)

    drift = run_job("cloudsync-drift.yml", "drift", repo, values, {})  # drift needs no value
    assert drift["exitcode"] == "0"
    assert "No drift." in (repo / "cloudsync-out" / "drift.md").read_text()
    assert files_containing(repo, canary) == []
    assert_no_canary(canary, comment)


def test_fork_pull_requests_plan_without_values(repo: Path) -> None:
    values = {"inputs.directory": "stack", "matrix.target": "local",
              "inputs.metadata-only || github.event.pull_request.head.repo.fork": "true",
              "secrets.plan-key": "k" * 32, "secrets.fingerprint-key": ""}
    planned = run_job("cloudsync-plan.yml", "plan", repo, values, {})  # WF_TOKEN is not set at all
    assert planned["exitcode"] == "2"
    assert "(metadata only" in (repo / "cloudsync-out" / "local.md").read_text()

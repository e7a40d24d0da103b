"""The apply workflow's `replace` input: the replacement is planned, shown, applied as that plan,
and no input text is ever run by the shell."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from cloudsync.providers.local import LocalStore
from tests.conftest import assert_no_canary, files_containing
from tests.e2e.test_workflows import run_job, run_steps, workflow

STACK = """\
version: 1
stack: wf
policy: {builtin: false}
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
secrets:
  - {name: wf/api-key, targets: [local, mirror], value: {generate: {}}}
  - {name: wf/token, targets: [local], value: {env: WF_TOKEN}}
"""
KEY = "plan-key-for-the-workflow-test-0123456789"


def _values(repo: Path) -> dict[str, str]:
    found = {}
    for store in ("local", "mirror"):
        db = LocalStore(repo / "stack" / ".cloudsync" / f"{store}.db")
        try:
            found[store] = hashlib.sha256(db.get_value("wf/api-key").reveal()).hexdigest()[:16]
        finally:
            db.close()
    return found


def _inputs(replace: str, grace: str = "") -> dict[str, str]:
    return {"inputs.directory": "stack", "inputs.setup": "", "inputs.replace": replace, "inputs.grace": grace,
            "secrets.plan-key": KEY, "secrets.fingerprint-key": "", "github.actor": "octocat"}


def test_only_the_replace_job_runs_when_replace_is_set() -> None:
    jobs = workflow("cloudsync-apply.yml")["jobs"]
    assert jobs["find-plan"]["if"] == "inputs.replace == ''" and jobs["apply"]["if"] == "inputs.replace == ''"
    assert jobs["replace"]["if"] == "inputs.replace != ''"
    assert "matrix" not in jobs["replace"].get("strategy", {})  # one value for all targets: one job
    for step in jobs["replace"]["steps"]:  # inputs reach scripts only through the environment
        assert "${{" not in step.get("run", "")


def test_the_replace_input_replaces_in_every_target(tmp_path: Path, write_stack: Callable[..., Path],
                                                    canary: str) -> None:
    repo = tmp_path / "repo"
    write_stack(STACK, root=repo / "stack")
    env = {"WF_TOKEN": canary, "CI": "true"}
    run_job("cloudsync-apply.yml", "replace", repo, _inputs("wf/token"), env, check=False)  # refused: env source
    assert not (repo / "cloudsync-out" / "replace.plan").exists()

    # The stack exists first (a normal apply), then the leak: replace it in both targets.
    run_steps([{"name": "apply", "run": "cloudsync apply -C stack --auto-approve"}], "setup", repo, {}, env)
    before = _values(repo)
    outputs = run_job("cloudsync-apply.yml", "replace", repo, _inputs(" wf/api-key\t", grace="0"), env)
    assert "failed" not in outputs
    after = _values(repo)
    assert after["local"] == after["mirror"] and after["local"] != before["local"]
    assert (repo / "cloudsync-out" / "replace.plan").is_file()  # kept as an artifact with the audit record
    audit = (repo / "stack" / ".cloudsync" / "audit.jsonl").read_text()
    assert '"replace"' in audit and "octocat" in audit
    assert files_containing(repo, canary, skip=lambda p: p.suffix == ".db") == []
    assert_no_canary(canary, audit)


def test_a_hostile_replace_input_is_never_run(tmp_path: Path, write_stack: Callable[..., Path]) -> None:
    repo = tmp_path / "repo"
    write_stack(STACK, root=repo / "stack")
    pwned = tmp_path / "pwned"
    hostile = (f'wf/api-key"; touch {pwned}-1; echo " $(touch {pwned}-2) `touch {pwned}-3` '
               f"'; touch {pwned}-4 #\n touch {pwned}-5 && wf/* ${{IFS}}x")
    outputs = run_job("cloudsync-apply.yml", "replace", repo, _inputs(hostile, grace=f"$(touch {pwned}-6)"),
                      {"WF_TOKEN": "x", "CI": "true"}, check=False)
    assert outputs.get("failed") == "plan the replacement"  # refused: names no secret declares
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) == []
    assert not (repo / "cloudsync-out" / "replace.plan").exists()

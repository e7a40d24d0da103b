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
WORKFLOWS = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), *sorted((ROOT / "examples" / "github").glob("*.yml"))]
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


def _condition(expr: str, values: dict[str, str], failed: bool) -> bool:
    """GitHub's `if:` for the few forms the shipped steps use: names compared to quoted strings,
    joined by && and ||, and always()/success()."""
    python = expr.replace("&&", " and ").replace("||", " or ").replace("always()", "True")
    python = python.replace("success()", repr(not failed))

    def name(match: re.Match[str]) -> str:
        if match.group(0) not in values:
            raise AssertionError(f"the test does not know the expression {match.group(0)!r}")
        return repr(values[match.group(0)])

    python = re.sub(r"\b(?:inputs|steps|matrix|needs|github)\.[\w.-]+", name, python)
    if "always()" not in expr and "failure()" not in expr and failed:
        return False
    return bool(eval(python, {"__builtins__": {}}))  # the shipped workflow's own expression, not user input


def run_steps(steps: list[dict[str, Any]], where: str, cwd: Path, values: dict[str, str], extra_env: dict[str, str],
              *, check: bool = True) -> dict[str, str]:
    """Run the shell steps of a job (or composite action) like the runner would: `if:` evaluated,
    `steps.ID.outputs` fed forward. Returns what they wrote to $GITHUB_OUTPUT, and under
    "failed" the step that failed (with check=False)."""
    values = dict(values)
    outputs: dict[str, str] = {}
    output_file = cwd / "github_output"
    failed = ""
    for step in steps:
        script = step.get("run")
        if script is None or script.startswith(("pip install", "python3 -m pip install")):
            continue
        if "if" in step and not _condition(str(step["if"]), values, bool(failed)):
            continue
        if failed and "if" not in step:
            continue
        output_file.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
        env.update({"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "GITHUB_OUTPUT": str(output_file),
                    "NO_COLOR": "1"})
        env.update({k: _expand(str(v), values) for k, v in (step.get("env") or {}).items()})
        env.update(extra_env)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            assert not check, f"{where}:{step.get('name')}: {proc.stdout}{proc.stderr}"
            failed = failed or str(step.get("name"))
        for line in output_file.read_text().splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
            if "id" in step:
                values[f"steps.{step['id']}.outputs.{key}"] = value
    if failed:
        outputs["failed"] = failed
    return outputs


def workflow(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    return spec


def run_job(name: str, job: str, cwd: Path, values: dict[str, str], extra_env: dict[str, str],
            *, check: bool = True) -> dict[str, str]:
    """Run the shell steps of one job of a shipped workflow."""
    return run_steps(workflow(name)["jobs"][job]["steps"], f"{name}:{job}", cwd, values, extra_env, check=check)


def step_named(name: str, job: str, step: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in workflow(name)["jobs"][job]["steps"] if s.get("name") == step)
    return found


@pytest.fixture
def repo(tmp_path: Path, write_stack: Callable[..., Path]) -> Path:
    write_stack(STACK, root=tmp_path / "repo" / "stack")
    return tmp_path / "repo"


def test_plan_then_apply_then_drift_workflows_on_the_local_provider(repo: Path, canary: str) -> None:
    key = "plan-key-for-the-workflow-test-0123456789"
    values = {
        "inputs.directory": "stack", "inputs.setup": "", "matrix.stack": "wf", "matrix.target": "local",
        "inputs.metadata-only || github.event.pull_request.head.repo.fork": "false",
        "secrets.plan-key": key, "secrets.fingerprint-key": "", "github.actor": "octocat",
    }
    env = {"WF_TOKEN": canary}

    listed = run_job("cloudsync-plan.yml", "targets", repo, values, env)
    assert json.loads(listed["matrix"]) == {"include": [{"target": "local", "provider": "local", "secrets": 1, "stack": "wf"}]}
    assert listed["stack"] == "wf" and listed["targets"] == "local"
    assert json.loads((repo / "cloudsync-out" / "wf" / "policy.sarif").read_text())["runs"]

    planned = run_job("cloudsync-plan.yml", "plan", repo, values, env)
    assert planned["exitcode"] == "2"  # changes to apply
    comment = (repo / "cloudsync-out" / "wf" / "local.md").read_text()
    assert comment.startswith("<!-- cloudsync:plan stack=wf -->") and "`local:wf/token`" in comment
    assert (repo / "cloudsync-out" / "wf" / "local.plan").is_file()

    run_job("cloudsync-apply.yml", "apply", repo, values, env)
    # The apply job uploads the audit record from where apply writes it: an ephemeral runner keeps nothing.
    audit_step = step_named("cloudsync-apply.yml", "apply", "keep the audit record")
    audit = repo / _expand(audit_step["with"]["path"], values)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert records and "octocat" in json.dumps(records)  # who applied, for the run's artifact

    drift = run_job("cloudsync-drift.yml", "drift", repo, values, {})  # drift needs no value
    assert drift["exitcode"] == "0" and drift["stack"] == "wf"
    assert "No drift." in (repo / "cloudsync-out" / "drift.md").read_text()
    assert files_containing(repo, canary) == []
    assert_no_canary(canary, comment)


def test_fork_pull_requests_plan_without_values(repo: Path) -> None:
    values = {"inputs.directory": "stack", "inputs.setup": "", "matrix.stack": "wf", "matrix.target": "local",
              "inputs.metadata-only || github.event.pull_request.head.repo.fork": "true",
              "secrets.plan-key": "k" * 32, "secrets.fingerprint-key": ""}
    planned = run_job("cloudsync-plan.yml", "plan", repo, values, {})  # WF_TOKEN is not set at all
    assert planned["exitcode"] == "2"
    assert "(metadata only" in (repo / "cloudsync-out" / "wf" / "local.md").read_text()


def _two_stack_repo(root: Path, write_stack: Callable[..., Path]) -> None:
    for stack, (first, second) in {"payments": ("a", "b"), "platform": ("c", "d")}.items():
        write_stack(f"""\
            version: 1
            stack: {stack}
            targets:
              {first}: {{provider: local, path: .cloudsync/{first}.db}}
              {second}: {{provider: local, path: .cloudsync/{second}.db}}
            principals:
              api: {{}}
            defaults:
              labels: {{owner: team-{stack}}}
              rotation: 30d
            secrets:
              - name: {stack}/token
                targets: [{first}, {second}]
                value: {{env: WF_TOKEN}}
                readers: [api]
            """, root=root / "stacks" / stack)
    # Target d cannot be read (its store is damaged): that shard fails, the others do not.
    (root / "stacks" / "platform" / ".cloudsync").mkdir()
    (root / "stacks" / "platform" / ".cloudsync" / "d.db").write_bytes(b"not a database, " * 64)


def test_two_stacks_two_targets_each_get_a_comment_per_stack(tmp_path: Path, write_stack: Callable[..., Path],
                                                              canary: str) -> None:
    repo = tmp_path / "repo"
    _two_stack_repo(repo, write_stack)
    env = {"WF_TOKEN": canary}
    github = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "acme/infra",
              "GITHUB_RUN_ID": "4242", "GITHUB_SHA": "0123456789abcdef0123"}
    artifacts: list[str] = []
    categories: list[str] = []
    for stack in ("payments", "platform"):
        values = {"inputs.directory": f"stacks/{stack}", "inputs.setup": "", "secrets.plan-key": "k" * 32,
                  "secrets.fingerprint-key": "", "inputs.metadata-only || github.event.pull_request.head.repo.fork": "false"}
        listed = run_job("cloudsync-plan.yml", "targets", repo, values, env)
        assert listed["stack"] == stack
        categories.append(_expand(step_named("cloudsync-plan.yml", "targets", "upload SARIF")["with"]["category"],
                                  {"steps.targets.outputs.stack": listed["stack"]}))
        assert json.loads((repo / "cloudsync-out" / stack / "policy.sarif").read_text())["runs"]
        for row in json.loads(listed["matrix"])["include"]:
            shard = {**values, "matrix.stack": row["stack"], "matrix.target": row["target"]}
            planned = run_job("cloudsync-plan.yml", "plan", repo, shard, {**env, **github}, check=False)
            assert planned["exitcode"] == ("1" if row["target"] == "d" else "2"), planned
            artifacts.append(_expand(step_named("cloudsync-plan.yml", "plan", "save the plan")["with"]["name"], shard))
        compose = step_named("cloudsync-plan.yml", "comment", "compose the comment")
        run_steps([compose], "comment", repo, {"needs.targets.outputs.stack": listed["stack"],
                                               "needs.targets.outputs.targets": listed["targets"]}, github)

    # upload-artifact@v4 refuses a duplicate name; code scanning keeps one result set per category.
    assert sorted(artifacts) == ["cloudsync-plan-payments-a", "cloudsync-plan-payments-b",
                                 "cloudsync-plan-platform-c", "cloudsync-plan-platform-d"]
    assert categories == ["cloudsync-payments", "cloudsync-platform"]

    payments = (repo / "cloudsync-out" / "payments" / "comment.md").read_text()
    platform = (repo / "cloudsync-out" / "platform" / "comment.md").read_text()
    assert payments.startswith("<!-- cloudsync:plan-comment stack=payments -->\n")
    assert platform.startswith("<!-- cloudsync:plan-comment stack=platform -->\n")
    assert "### `payments` · target `a`: changes" in payments and "### `payments` · target `b`: changes" in payments
    assert "`a:payments/token`" in payments and "`b:payments/token`" in payments and "platform" not in payments
    assert "### `platform` · target `c`: changes" in platform
    # The failed shard is in its stack's comment, with what went wrong, not silently missing.
    failed = platform[platform.index("target `d`"):]
    assert failed.startswith("target `d`: **error**") and "### Plan error: `platform`" in failed
    assert "d.db" in failed
    # The commit and the run are linked once per comment, at its top, not again in each target's section
    # (the shards ran with the runner's GITHUB_* variables, as on GitHub).
    for comment in (payments, platform):
        header = comment.split("\n### ", 1)[0]
        assert header.count("](https://github.example/acme/infra/actions/runs/4242)") == 1, header
        assert comment.count("](https://github.example/acme/infra/actions/runs/4242)") == 1, comment
        assert comment.count("](https://github.example/acme/infra/commit/0123456789abcdef0123)") == 1, comment
        assert "[`0123456789ab`]" in header and "[workflow run 4242]" in header
    assert files_containing(repo, canary) == []


def test_a_shard_that_left_no_report_is_named_in_the_comment(tmp_path: Path) -> None:
    (tmp_path / "cloudsync-out" / "s").mkdir(parents=True)
    compose = step_named("cloudsync-plan.yml", "comment", "compose the comment")
    run_steps([compose], "comment", tmp_path, {"needs.targets.outputs.stack": "s", "needs.targets.outputs.targets": "x"},
              {"GITHUB_SERVER_URL": "https://g", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "1", "GITHUB_SHA": "f" * 40})
    body = (tmp_path / "cloudsync-out" / "s" / "comment.md").read_text()
    assert "target `x`: **no report**" in body and "failed before it could plan" in body


def test_sections_that_do_not_fit_link_to_the_full_report(tmp_path: Path) -> None:
    out = tmp_path / "cloudsync-out" / "big"
    out.mkdir(parents=True)
    for target in ("t1", "t2"):
        (out / f"{target}.md").write_text("x" * 59_000 + "\n")  # each shard is bounded on its own, the sum is not
        (out / f"{target}.exitcode").write_text("2\n")
    compose = step_named("cloudsync-plan.yml", "comment", "compose the comment")
    run_steps([compose], "comment", tmp_path, {"needs.targets.outputs.stack": "big", "needs.targets.outputs.targets": "t1 t2"},
              {"GITHUB_SERVER_URL": "https://g", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "7", "GITHUB_SHA": "f" * 40})
    body = (out / "comment.md").read_text()
    assert len(body) <= 65_535
    assert "target `t2`: changes" in body and "artifact cloudsync-plan-big-t2 of [this run](https://g/o/r/actions/runs/7)" in body


def test_composite_action_is_valid_for_github() -> None:
    checker = shutil.which("check-jsonschema", path=str(BIN)) or "check-jsonschema"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-actions", str(ROOT / "action.yml")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("command", "code", "report"), [
    ("plan --format markdown --detailed-exitcode", "2", "plan.out"),
    ("policy check --format json", "0", "policy-check.out"),
])
def test_composite_action_runs_one_command_and_says_where_its_report_is(
        repo: Path, command: str, code: str, report: str, canary: str) -> None:
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    values = {"inputs.install": "", "inputs.command": command, "inputs.directory": "stack",
              "inputs.report-dir": "reports", "inputs.fail-on-error": "true"}
    outputs = run_steps(action["runs"]["steps"], "action.yml", repo, values, {"WF_TOKEN": canary})
    assert outputs["exit-code"] == code and outputs["report"] == f"reports/{report}"
    assert (repo / outputs["report"]).read_text().strip()
    assert set(action["outputs"]) == {"exit-code", "report", "diagnostics"}
    assert files_containing(repo, canary) == []


def test_composite_action_fails_the_step_on_error_and_keeps_the_report(tmp_path: Path,
                                                                        write_stack: Callable[..., Path]) -> None:
    write_stack(STACK.replace("readers: [api]", "readers: [apii]"), root=tmp_path / "repo" / "stack")
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    values = {"inputs.install": "", "inputs.command": "plan --format json", "inputs.directory": "stack",
              "inputs.report-dir": "reports", "inputs.fail-on-error": "true"}
    outputs = run_steps(action["runs"]["steps"], "action.yml", tmp_path / "repo", values, {}, check=False)
    assert outputs["failed"] == "run cloudsync" and outputs["exit-code"] == "1"
    assert json.loads((tmp_path / "repo" / "reports" / "plan.out").read_text())["errors"]
    assert "did you mean 'api'" in (tmp_path / "repo" / "reports" / "plan.err").read_text()


def run_github_script(step: dict[str, Any], cwd: Path, state: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Run a github-script step with node against an in-memory GitHub; return its new state."""
    node = shutil.which("node")
    assert node, "node is needed to run the workflows' github-script steps (.ci/run installs it)"
    state = {"pr": 7, "comments": [], "issues": [], "issue_comments": [], "outputs": {}, **state}
    (cwd / "state.json").write_text(json.dumps(state))
    (cwd / "script.js").write_text(step["with"]["script"])
    env = {**os.environ, **{k: _expand(str(v), values) for k, v in (step.get("env") or {}).items()}}
    proc = subprocess.run([node, str(Path(__file__).with_name("github_script_harness.js")), "state.json", "script.js"],
                          cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads((cwd / "state.json").read_text())
    return result


def test_each_stack_updates_its_own_comment_in_place(tmp_path: Path) -> None:
    post = step_named("cloudsync-plan.yml", "comment", "post or update the stack's comment")
    for stack in ("payments", "platform"):
        (tmp_path / "cloudsync-out" / stack).mkdir(parents=True)
        (tmp_path / "cloudsync-out" / stack / "comment.md").write_text(
            f"<!-- cloudsync:plan-comment stack={stack} -->\nnew plan of {stack}\n")
    state = {"comments": [{"id": 1, "body": "<!-- cloudsync:plan-comment stack=payments -->\nold plan"},
                          {"id": 2, "body": "<!-- cloudsync:plan-comment stack=payments-eu -->\nanother stack"},
                          {"id": 3, "body": "looks good to me"}]}
    state = run_github_script(post, tmp_path, state, {"needs.targets.outputs.stack": "payments"})
    state = run_github_script(post, tmp_path, state, {"needs.targets.outputs.stack": "platform"})
    state = run_github_script(post, tmp_path, state, {"needs.targets.outputs.stack": "platform"})
    bodies = {c["id"]: c["body"] for c in state["comments"]}
    assert bodies[1].endswith("new plan of payments\n")  # updated in place
    assert bodies[2].endswith("another stack") and bodies[3] == "looks good to me"  # a prefix is not a match
    assert [b for b in bodies.values() if "stack=platform" in b] == [
        "<!-- cloudsync:plan-comment stack=platform -->\nnew plan of platform\n"]  # created once, then updated


def test_a_clean_stack_closes_only_its_own_drift_issue(tmp_path: Path) -> None:
    issue = step_named("cloudsync-drift.yml", "drift", "open, update or close the stack's drift issue")
    (tmp_path / "cloudsync-out").mkdir()
    (tmp_path / "cloudsync-out" / "drift.md").write_text("<!-- cloudsync:drift stack=x -->\ndrift report\n")
    payments = {"number": 5, "title": "cloudsync: drift in stack payments", "labels": ["cloudsync-drift"],
                "state": "open", "body": "<!-- cloudsync:drift-issue stack=payments -->\nold report"}
    state: dict[str, Any] = {"issues": [payments]}

    def drift(stack: str, code: str) -> None:
        nonlocal state
        state = run_github_script(issue, tmp_path, state, {"steps.drift.outputs.exitcode": code,
                                                           "steps.drift.outputs.stack": stack})

    drift("platform", "0")
    assert state["issues"][0]["state"] == "open" and state["issue_comments"] == []
    drift("platform", "2")
    drift("platform", "1")  # an error is reported in the same issue
    platform = [i for i in state["issues"] if "stack=platform" in i["body"]]
    assert len(platform) == 1 and platform[0]["title"] == "cloudsync: drift check failed for stack platform"
    drift("payments", "0")
    assert {i["number"]: i["state"] for i in state["issues"]} == {5: "closed", platform[0]["number"]: "open"}
    assert state["issue_comments"] == [{"issue_number": 5, "body": "No drift any more in stack payments."}]

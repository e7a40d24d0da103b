"""A policy's cost is bounded: static limits at load, time and memory budgets when it runs.

Every rule here hung ``validate``/``plan``/``policy check`` (or crashed them) before CEL
ran in a budgeted process; now each ends in a diagnostic or a fail-closed violation.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.policy import evaluate
from cloudsync.policy.budget import Budget, Spent, run_tasks, static_problems
from cloudsync.policy.loader import load_policies
from tests.conftest import CLI

from .helpers import STACK_HEAD, TODAY, stack_with, write

TEN = "[0,1,2,3,4,5,6,7,8,9]"
# The issue's reproduction: eight nested comprehensions, 10^8 steps, minutes of CPU.
HANGING_RULE = "".join(f"{TEN}.all({v}, " for v in "abcdefgh") + "a+b+c+d+e+f+g+h >= 0" + ")" * 8
# Within the static limits (three levels), and cheap on a one-principal sample, but each
# document costs principals^3 steps: with 400 principals, 64 million per document.
DATA_COSTLY_RULE = "principals.all(a, principals.all(b, principals.all(c, a + b + c != \"\")))"


def _policy_file(folder: Path, rule: str, pid: str = "T001", severity: str = "error") -> Path:
    return write(folder, {f"{pid}.yaml": f"""\
        policies:
          - id: {pid}
            title: costly
            severity: {severity}
            rule: '{rule}'
            message: costly says no
        """})


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess; a run past 60 s is the hang this file is about."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    full_env.update({"NO_COLOR": "1", **(env or {})})
    try:
        return subprocess.run([CLI, *args], env=full_env, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"cloudsync {' '.join(args)} hung")


def test_the_issues_hanging_rule_is_refused_by_validate_plan_and_check_at_its_line(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    stack_with(stack, "- {name: app/x, targets: [local], readers: [api-prod]}\n")
    _policy_file(stack / "policies", HANGING_RULE)
    for command in (["validate"], ["policy", "check"], ["plan", "--metadata-only", "--target", "local"]):
        result = _run(*command, "-C", str(stack))
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "T001.yaml:5:" in result.stderr and "nest 8 deep; at most 3 are allowed" in result.stderr
        assert "Traceback" not in result.stderr and "valid:" not in result.stdout


def test_a_rule_too_costly_for_its_own_sample_is_refused_at_load(tmp_path: Path) -> None:
    big = "[" + ",".join("1" * 400) + "]"  # 400^3 steps on any document
    folder = _policy_file(tmp_path / "p", f"{big}.all(a, {big}.all(b, {big}.all(c, a + b + c >= 0)))")
    started = time.monotonic()
    with pytest.raises(CloudsyncError) as info:
        load_policies([folder], Budget(rule_seconds=1))
    assert time.monotonic() - started < 30
    (diag,) = info.value.diagnostics
    assert diag.file is not None and diag.file.endswith("T001.yaml") and diag.line == 5
    assert diag.message == "rule could not be checked: it ran longer than its budget of 1 s for a load-time check"


def test_a_rule_whose_cost_grows_with_the_data_is_a_violation_of_that_policy_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    principals = "".join(f"  p{i}: {{local: p{i}}}\n" for i in range(400))
    head = STACK_HEAD.replace("principals:\n", "principals:\n" + principals)
    stack = stack_with(tmp_path / "s", "- {name: app/x, targets: [local, gcp-dev]}\n", head=head)
    folder = _policy_file(tmp_path / "p", DATA_COSTLY_RULE)
    load_policies([folder])  # passes its load-time check: one principal in the sample
    monkeypatch.setenv("CLOUDSYNC_POLICY_RULE_SECONDS", "1")
    started = time.monotonic()
    report = evaluate(stack, extra_dirs=[folder], today=TODAY)
    assert time.monotonic() - started < 30
    costly = {v.address: v for v in report.violations if v.policy == "T001"}
    assert set(costly) == {"local:app/x", "gcp-dev:app/x"} and report.blocking
    assert all(v.message == "policy T001 could not be evaluated, so it counts as violated: it ran longer than its "
                            "budget of 1 s (CLOUDSYNC_POLICY_RULE_SECONDS)" for v in costly.values())
    (diag,) = [d for d in report.diagnostics if "T001" in d.message]
    assert diag.severity.value == "error" and diag.file and diag.file.endswith("T001.yaml") and diag.line == 2
    # The policies after it still ran in a fresh evaluator: CS004 flags the dev placement of nothing
    # here, but CS012 (no generate length) and the rest were judged, not skipped.
    assert report.policies[-1].id == "T001" and len(report.policies) == 17
    assert not any("could not be evaluated" in v.message for v in report.violations if v.policy != "T001")


def test_the_run_budget_bounds_every_policy_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    principals = "".join(f"  p{i}: {{local: p{i}}}\n" for i in range(400))
    head = STACK_HEAD.replace("principals:\n", "principals:\n" + principals)
    stack = stack_with(tmp_path / "s", "- {name: app/x, targets: [local]}\n", head=head)
    folder = tmp_path / "p"
    _policy_file(folder, DATA_COSTLY_RULE, "A001", "warning")  # ids sort first: they run before the pack
    _policy_file(folder, DATA_COSTLY_RULE, "A002", "warning")
    monkeypatch.setenv("CLOUDSYNC_POLICY_RULE_SECONDS", "30")
    monkeypatch.setenv("CLOUDSYNC_POLICY_RUN_SECONDS", "2")
    started = time.monotonic()
    report = evaluate(stack, extra_dirs=[folder], today=TODAY)
    assert time.monotonic() - started < 30
    by_policy = {v.policy: v.message for v in report.violations}
    assert "still running when the run's policy budget of 2 s" in by_policy["A001"]
    assert "budget of 2 s (CLOUDSYNC_POLICY_RUN_SECONDS) was spent before it ran" in by_policy["A002"]
    # A warning-level policy that burns the run's time cannot buy the pack a pass: it fails closed.
    assert "spent before it ran" in by_policy["CS001"] and report.blocking


def test_a_job_past_its_memory_budget_is_stopped_and_said(tmp_path: Path) -> None:
    secrets = [{"name": f"app/s{i}", "labels": {"k": "v" * 100}} for i in range(20_000)]
    setup = {"constants": {"principals": {}, "stack": {}, "now": ""}, "secrets": secrets,
             "targets": [{"name": "local"}], "columns": {"cs__Ts": [], "cs__Tt": [], "cs__Tc": [], "cs__Tr": []},
             "params": [{}]}
    task = ("policy", {"batch": "cs__chunk.filter(cs__i, !(true))", "match": None, "rule": "true",
                       "per_target": False, "k": 0})
    (result,) = run_tasks(setup, [task], Budget(memory_mb=16))
    assert isinstance(result, Spent) and "16 MiB memory budget (CLOUDSYNC_POLICY_MEMORY_MB)" in result.reason
    assert run_tasks(setup, [task], Budget()) == [{}]  # the same job fits the default budget


def test_the_parser_cannot_be_crashed_by_a_deep_expression(tmp_path: Path) -> None:
    # 100,000 member selections overflowed the CEL parser's stack: SIGSEGV of the whole CLI.
    # 10,000 selections (60 KB) stay under the YAML layer's 64 KiB value bound, so the rule's own
    # length limit is what refuses them; 100,000 are refused by the YAML layer first.
    for depth, expected in ((10_000, "characters long; at most 4096 are allowed"),
                            (100_000, "a value longer than 64 KiB")):
        folder = _policy_file(tmp_path / f"p{depth}", "secret" + ".name" * depth)
        with pytest.raises(CloudsyncError) as info:
            load_policies([folder])
        (diag,) = info.value.diagnostics
        assert expected in diag.message and diag.line == 5, depth


@pytest.mark.parametrize(("source", "problem"), [
    ("x.all(a, a.all(b, b.all(c, c)))", None),
    ("x.all(a, a.all(b, b.all(c, c.exists(d, d))))", "nest 4 deep"),
    ("x.map(a, a).map(b, b).map(c, c).map(d, d) == x", None),  # chained, not nested
    ("(" * 33 + "1" + ")" * 33, "brackets nest more than 32 deep"),
    ('"' + "a" * 5000 + '"', "5002 characters long"),
])
def test_static_limits(source: str, problem: str | None) -> None:
    found = static_problems(source)
    assert (found[0].message if found else None) == problem or (problem and problem in found[0].message)


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1e9"])
def test_a_bad_budget_setting_is_a_diagnostic(value: str) -> None:
    with pytest.raises(CloudsyncError, match="CLOUDSYNC_POLICY_RULE_SECONDS must be a positive number"):
        Budget.from_env({"CLOUDSYNC_POLICY_RULE_SECONDS": value})

"""Evaluation: the issue's "done when" stack, fail-closed evaluation, batching, plan runs."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloudsync.plan.build import PlanRun, Values
from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.plan.planner import DesiredSecret, DesiredValue
from cloudsync.policy import budget as budget_module
from cloudsync.policy import celworker, evaluate
from cloudsync.providers.base import RemoteSecret

from .helpers import TODAY, check, pairs, stack_with, write


def test_done_when_wildcard_reader_prod_in_dev_and_400_day_rotation_block_at_their_lines(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, """\
        - name: app/public
          targets: [gcp-prod]
          labels: {env: prod}
          readers: [everyone]
        - name: app/db
          targets: [gcp-prod, gcp-dev]
          labels: {env: prod}
          readers: [api-prod]
        - name: app/slow
          targets: [local]
          rotation: 400d
        - name: app/fine
          targets: [gcp-prod]
          labels: {env: prod}
          readers: [api-prod]
        """)
    report = check(stack, only=["CS001", "CS004", "CS006"])
    assert report.blocking
    file = str(tmp_path / "cloudsync.yaml")
    got = {(v.policy, v.address, v.file, v.line, v.severity) for v in report.violations}
    assert got == {
        ("CS001", "gcp-prod:app/public", file, 16, "error"),
        ("CS004", "gcp-dev:app/db", file, 20, "error"),
        ("CS006", "local:app/slow", file, 24, "error"),
    }
    assert (tmp_path / "cloudsync.yaml").read_text().splitlines()[15] == "  - name: app/public"


def test_a_clean_stack_passes_every_builtin_policy(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, """\
        - name: app/db
          description: database password
          targets: [gcp-prod]
          labels: {env: prod}
          value: {generate: {length: 40}}
          readers: [api-prod]
        """)
    report = check(stack)
    assert report.violations == [] and not report.blocking
    assert report.evaluated == 1 and len(report.policies) == 16


def test_quickstart_example_is_clean() -> None:
    from cloudsync.config.loader import load_stack

    report = evaluate(load_stack(Path(__file__).parents[2] / "examples" / "quickstart"), today=TODAY)
    assert report.violations == [] and report.waived == [] and report.diagnostics == []


def test_disabling_and_reparameterising(tmp_path: Path) -> None:
    head = textwrap.dedent("""\
        version: 1
        stack: demo
        targets: {local: {provider: local}}
        principals: {a: {}, b: {}, c: {}}
        defaults: {labels: {owner: o}, rotation: 30d}
        policy:
          disabled: [CS009]
          parameters:
            CS003: {max_readers: 2}
            CS006: {max_rotation_days: 20}
        """)
    stack = stack_with(tmp_path, """\
        - {name: Bad_Name, targets: [local], readers: [a, b, c]}
        - {name: app/ok, targets: [local], readers: [a], rotation: 10d}
        """, head=head)
    report = check(stack)
    assert pairs(report) == {("CS003", "local:Bad_Name"), ("CS006", "local:Bad_Name")}
    assert "CS009" not in {p.id for p in report.policies}
    assert report.parameters["CS003"]["max_readers"] == 2
    message = next(v.message for v in report.violations if v.policy == "CS003")
    assert message == "local:Bad_Name has more than 2 readers"
    assert not any(v.severity == "error" and v.policy == "CS003" for v in report.violations)


def _custom(tmp_path: Path, rule: str, *, match: str | None = None) -> Path:
    folder = tmp_path / "extra"
    lines = ["policies:", "  - id: T001", "    title: custom", "    severity: error", f"    rule: '{rule}'",
             "    message: custom says no"]
    if match:
        lines.insert(4, f"    match: '{match}'")
    write(folder, {"t.yaml": "\n".join(lines) + "\n"})
    return folder


@pytest.mark.parametrize(("rule", "match", "why"), [
    ('secret.labels.zone == "eu"', None, "its rule failed: no such key 'zone'"),
    ("1 / (size(secret.readers) - size(secret.readers)) == 1", None, "its rule failed: ZeroDivisionError"),
    ('secret.env == "prod" ? "yes" : true', None, "its rule gave a str value, not true or false"),
    ("true", 'secret.env == "prod" ? 1 : false', "its match gave a int value, not true or false"),
    ('true', 'secret.labels.tier == "gold"', "its match failed: no such key 'tier'"),
])
def test_evaluation_fails_closed(tmp_path: Path, rule: str, match: str | None, why: str) -> None:
    stack = stack_with(tmp_path / "s", """\
        - {name: app/prod, targets: [gcp-prod], labels: {env: prod}, readers: [api-prod]}
        """)
    report = check(stack, only=["T001"], extra_dirs=[_custom(tmp_path, rule, match=match)])
    (violation,) = report.violations
    assert violation.address == "gcp-prod:app/prod" and violation.severity == "error"
    assert violation.message.startswith("policy T001 could not be evaluated, so it counts as violated: ")
    assert why in violation.message


def test_bad_regex_parameter_fails_closed(tmp_path: Path) -> None:
    head = textwrap.dedent("""\
        version: 1
        stack: demo
        targets: {local: {provider: local}}
        defaults: {labels: {owner: o}, rotation: 30d}
        policy: {parameters: {CS009: {pattern: "["}}}
        """)
    stack = stack_with(tmp_path, "- {name: app/x, targets: [local]}\n", head=head)
    (violation,) = check(stack, only=["CS009"]).violations
    assert "could not be evaluated" in violation.message and "regex" in violation.message


def test_errors_and_violations_mix_across_batches(tmp_path: Path) -> None:
    """300 secrets span three batches; a batch that raises is judged document by document."""
    secrets = "".join(
        f"- {{name: app/s{i:03d}, targets: [local], labels: {{{'env: prod, ' if i % 3 == 0 else ''}team: t}}}}\n"
        for i in range(300))
    stack = stack_with(tmp_path / "s", secrets)
    # Without an env label the first operand errors; CEL's && absorbs that error only when the
    # other operand is false, so names ending in 0 error and the rest are plainly false.
    rule = 'secret.labels.env == "prod" && secret.name.endsWith("0")'
    report = check(stack, only=["T001"], extra_dirs=[_custom(tmp_path, rule)])
    errors = {v.address for v in report.violations if "could not be evaluated" in v.message}
    false = {v.address for v in report.violations if v.message == "custom says no"}
    assert errors == {f"local:app/s{i:03d}" for i in range(300) if i % 3 and i % 10 == 0}
    assert false == {f"local:app/s{i:03d}" for i in range(300) if i % 10}
    assert all("no such key 'env'" in v.message for v in report.violations if v.address in errors)
    assert report.evaluated == 300


def test_a_panic_in_the_cel_runtime_is_a_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The evaluator's own loop, in process: a pyo3 panic (a BaseException) is a failing document."""

    class PanicException(BaseException):  # what pyo3 raises when Rust panics
        pass

    class Panicking:
        def execute(self, context: Any) -> Any:
            raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr(celworker, "compile_source", lambda source: Panicking())
    runner = celworker.Runner({
        "constants": {"principals": {}, "stack": {}, "now": ""}, "secrets": [{"name": "app/x"}],
        "targets": [{"name": "local"}], "params": [{}],
        "columns": {"cs__Ts": [0], "cs__Tt": [0], "cs__Tc": [None], "cs__Tr": [None]}})
    outcomes = runner.policy({"batch": "b", "match": None, "rule": "r", "per_target": True, "k": 0})
    assert outcomes == {0: "its rule failed: PanicException: called `Option::unwrap()` on a `None` value"}


def test_keyboard_interrupt_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Any, timeout: float) -> Any:
        raise KeyboardInterrupt

    stack = stack_with(tmp_path, "- {name: app/x, targets: [local]}\n")
    check(stack)  # the evaluator is running
    monkeypatch.setattr(budget_module._Worker, "receive", interrupted)
    with pytest.raises(KeyboardInterrupt):
        check(stack)
    assert budget_module._worker is None  # ended mid-job: the next run starts a fresh one
    monkeypatch.undo()
    assert check(stack).evaluated == 1


def test_secret_level_results_are_reported_per_address(tmp_path: Path) -> None:
    stack = stack_with(tmp_path, "- {name: app/x, targets: [gcp-prod, gcp-dev], readers: [everyone]}\n")
    assert pairs(check(stack, only=["CS001"])) == {("CS001", "gcp-prod:app/x"), ("CS001", "gcp-dev:app/x")}


# --- with a plan run -----------------------------------------------------------------------


def _run(stack: Any, *, targets: list[str], changes: list[Change],
         actual: dict[str, dict[str, RemoteSecret]]) -> PlanRun:
    desired = [DesiredSecret(target=t, provider=stack.config.targets[t].provider, secret=d.decl.name,
                             remote_name=d.decl.name.replace("/", "-"), value=DesiredValue("none"))
               for d in stack.secrets for t in d.decl.targets if t in targets]
    plan = Plan(stack=stack.name, changes=changes, created_at=datetime(2026, 6, 1, tzinfo=UTC), targets=targets)
    return PlanRun(plan=plan, values=Values(), actual=actual, desired=desired)


def test_plan_run_supplies_change_and_remote_and_limits_addresses(tmp_path: Path) -> None:
    policies = write(tmp_path / "org", {"org.yaml": """\
        policies:
          - id: ORG001
            title: No access changes without review
            severity: error
            match: change != null && change.action != "noop"
            rule: '!("access" in change.reasons)'
            message: "{address} changes access"
          - id: ORG002
            title: Remote secrets must be owned by this stack
            severity: warning
            match: remote != null
            rule: remote.managed && remote.owner == stack.name && remote.expires_at != null
            message: "{address} is not ours"
        """})
    stack = stack_with(tmp_path / "s", """\
        - {name: app/a, targets: [gcp-prod, gcp-dev], readers: [api-prod]}
        - {name: app/b, targets: [gcp-prod], readers: [api-prod]}
        """)
    changes = [
        Change(address="gcp-prod:app/a", target="gcp-prod", provider="gcp", secret="app/a", remote_name="app-a",
               action=Action.UPDATE, reasons=(Reason.ACCESS,)),
        Change(address="gcp-prod:app/b", target="gcp-prod", provider="gcp", secret="app/b", remote_name="app-b",
               action=Action.NOOP),
    ]
    actual = {"gcp-prod": {
        "app-a": RemoteSecret(name="app-a", managed=True, owner="demo",
                              expires_at=datetime(2027, 1, 1, tzinfo=UTC)),
        "app-b": RemoteSecret(name="app-b", managed=True, owner="other"),
    }}
    run = _run(stack, targets=["gcp-prod"], changes=changes, actual=actual)
    report = evaluate(stack, run, extra_dirs=[policies], today=TODAY)
    assert pairs(report) == {("ORG001", "gcp-prod:app/a"), ("ORG002", "gcp-prod:app/b")}
    assert report.evaluated == 2  # gcp-dev was not planned, so it is not evaluated
    assert not check(stack, only=["ORG001", "ORG002"], extra_dirs=[policies]).violations  # no plan: no change


def test_the_garbage_collector_state_is_restored(tmp_path: Path) -> None:
    import gc

    stack = stack_with(tmp_path, "- {name: app/x, targets: [local]}\n")
    assert gc.isenabled()
    check(stack)
    assert gc.isenabled()
    gc.disable()
    try:
        check(stack)
        assert not gc.isenabled()
    finally:
        gc.enable()

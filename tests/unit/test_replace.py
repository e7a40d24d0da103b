"""`--replace` without any server: which secrets a selector names, how the planner marks them,
and the order apply runs what follows a replaced value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudsync.apply import Outcome, apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import build_plan, open_session
from cloudsync.plan.model import Action, Change, Plan, Reason, ValueMode, ValuePlan
from cloudsync.plan.planner import DesiredSecret, DesiredValue, plan_changes
from cloudsync.plan.replace import parse_grace, replacements
from cloudsync.providers.base import ProviderError, RemoteSecret, ValueRecord
from tests.unit.test_apply import FaultyLocal, faulty  # noqa: F401 - the fixture, shared

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STACK = """\
version: 1
stack: payments
targets:
  aws-prod: {provider: local, path: a.db}
  gcp-prod: {provider: local, path: g.db}
secrets:
  - {name: payments/api-key, targets: [aws-prod, gcp-prod], value: {generate: {}}}
  - {name: payments/db-password, targets: [aws-prod], value: {generate: {}}}
  - {name: payments/smtp, targets: [aws-prod], value: {env: SMTP}}
  - {name: payments/ext, targets: [aws-prod], value: {generate: {}}, rotation: {every: 30d, by: external}}
  - {name: payments/none, targets: [aws-prod]}
  - {name: payments/lic, targets: [aws-prod], value: {file: lic.txt}}
  - {name: other/key, targets: [gcp-prod], value: {generate: {type: ed25519}}}
"""
BOTH = ["aws-prod", "gcp-prod"]


@pytest.fixture
def stack(tmp_path: Path) -> object:
    (tmp_path / "cloudsync.yaml").write_text(STACK)
    return load_stack(tmp_path)


@pytest.mark.parametrize(("selectors", "expected"), [
    (["payments/api-key"], {"payments/api-key"}),
    (["aws-prod:payments/api-key"], {"payments/api-key"}),  # an address names its whole secret
    (["payments/*"], {"payments/api-key", "payments/db-password"}),  # a glob skips what cannot be replaced
    (["gcp-prod:*"], {"payments/api-key", "other/key"}),
    (["*:payments/db-*", "other/key"], {"payments/db-password", "other/key"}),
    ([], set()),
])
def test_selectors_name_whole_generated_secrets(stack: object, selectors: list[str], expected: set[str]) -> None:
    assert replacements(stack, BOTH, selectors) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("selector", "message", "hint"), [
    ("payments/smtp", "environment variable SMTP", "set SMTP"),
    ("payments/ext", "an external system rotates it", "make a new one at its issuer or rotator"),
    ("payments/none", "it declares no value", "where it is written"),
    ("payments/lic", "the file lic.txt", "writes lic.txt"),
    ("payments/api-kee", "no declared secret matches", "did you mean 'payments/api-key'?"),
    ("gpc-prod:other/key", "no target 'gpc-prod'", "did you mean 'gcp-prod'?"),
    ("", "not a secret name or address", "e.g. --replace"),
    ("x" * 700, "not a secret name or address", "e.g. --replace"),
])
def test_refusals_are_diagnostics_with_a_hint(stack: object, selector: str, message: str, hint: str) -> None:
    with pytest.raises(CloudsyncError) as refused:
        replacements(stack, BOTH, [selector])  # type: ignore[arg-type]
    [diag] = refused.value.diagnostics
    assert message in diag.message and diag.hint is not None and hint in diag.hint
    assert len(diag.render()) < 1200  # a hostile selector is bounded in the message


def test_every_problem_at_once_and_a_secret_outside_the_plan(stack: object) -> None:
    with pytest.raises(CloudsyncError) as refused:
        replacements(stack, ["aws-prod"], ["payments/smtp", "payments/api-key", "nope"])  # type: ignore[arg-type]
    messages = [d.message for d in refused.value.diagnostics]
    assert len(messages) == 3
    assert any("it also lives in gcp-prod, which this plan leaves out" in m for m in messages)
    with pytest.raises(CloudsyncError):
        replacements(stack, BOTH, ["payments/api-key"] * 201)  # type: ignore[arg-type]


def test_grace_takes_zero_and_durations() -> None:
    assert parse_grace("0") == timedelta(0)
    assert parse_grace("12h") == timedelta(hours=12)
    with pytest.raises(CloudsyncError):
        parse_grace("-1d")


def _want(target: str, secret: str = "app/key") -> DesiredSecret:
    return DesiredSecret(target=target, provider="local", secret=secret, remote_name=secret,
                         value=DesiredValue("generate", spec="s1"))


def _have(secret: str = "app/key") -> RemoteSecret:
    record = ValueRecord(version="1", spec="s1", written_at=NOW - timedelta(days=1), key_id="k", fingerprint="a" * 32)
    return RemoteSecret(name=secret, labels={}, owner="payments", managed=True, current_version="1", record=record,
                        revision="r1")


def test_the_planner_regenerates_a_replaced_secret_in_every_target_with_its_grace() -> None:
    desired = [_want("a"), _want("b"), _want("c"), _want("a", "app/other")]
    actual = {"a": {"app/key": _have(), "app/other": _have("app/other")}, "b": {}, "c": {"app/key": _have()}}
    unchanged = plan_changes("payments", desired, actual, NOW)
    # Without --replace: a target that lacks the value copies it from a sibling.
    assert [(c.address, c.value.mode if c.value else None) for c in unchanged.real_changes] == [
        ("b:app/key", ValueMode.COPY)]
    plan = plan_changes("payments", desired, actual, NOW, replace={"app/key"}, grace=timedelta(0))
    rows = [(c.address, c.action, c.reasons, c.value.mode if c.value else None, c.value.grace if c.value else None)
            for c in plan.real_changes]
    assert rows == [
        ("a:app/key", Action.UPDATE, (Reason.REPLACE,), ValueMode.GENERATE, timedelta(0)),
        ("b:app/key", Action.CREATE, (Reason.VALUE, Reason.REPLACE), ValueMode.GENERATE, timedelta(0)),
        ("c:app/key", Action.UPDATE, (Reason.REPLACE,), ValueMode.GENERATE, timedelta(0)),
    ]
    assert all(c.value is not None and c.value.regenerate for c in plan.real_changes)


def _change(secret: str, follows: tuple[str, ...] = (), action: Action = Action.UPDATE) -> Change:
    return Change(address=f"t:{secret}", target="t", provider="local", secret=secret, remote_name=secret,
                  action=action, value=ValuePlan(ValueMode.GENERATE), follows=follows)


def test_apply_order_follows_the_dependencies() -> None:
    plan = Plan(stack="payments", created_at=NOW, changes=[
        _change("leaf", ("ca", "ca-bundle")), _change("ca-bundle", ("ca",)), _change("ca"), _change("old", (),
                                                                                                     Action.DELETE),
        _change("loop-a", ("loop-b",)), _change("loop-b", ("loop-a",)), _change("gone", ("not-in-plan",))])
    groups = [(phase.name, sorted(c.secret for c in group)) for phase, group in plan.phases()]
    assert groups == [("WRITE", ["ca", "gone", "loop-b"]), ("WRITE", ["ca-bundle", "loop-a"]), ("WRITE", ["leaf"]),
                      ("DELETE", ["old"])]


FOLLOWING = """\
version: 1
stack: shop
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
secrets:
  - {name: app/key, targets: [local], value: {generate: {}}}
  - {name: app/key-copy, targets: [mirror], value: {from: {target: local, name: app/key}}}
"""


@pytest.mark.usefixtures("faulty")
def test_a_copy_is_not_written_when_the_replacement_it_follows_failed(write_stack: Callable[..., Path]) -> None:
    stack = load_stack(write_stack(FOLLOWING))
    targets = list(stack.config.targets)
    with open_session(stack) as session:
        assert apply_plan(session, build_plan(session, targets), sleep=lambda _s: None).ok
        before = session.read_value("mirror", "app/key-copy").reveal()
    FaultyLocal.faults["app/key"] = [ProviderError("denied", code="AccessDenied")]
    with open_session(stack) as session:
        report = apply_plan(session, build_plan(session, targets, replace=["app/key"]), sleep=lambda _s: None)
        outcomes = {r.change.address: (r.outcome, r.error) for r in report.results}
        assert outcomes["local:app/key"][0] is Outcome.FAILED
        assert outcomes["mirror:app/key-copy"] == (
            Outcome.NOT_ATTEMPTED, "not started: it follows app/key, whose write did not apply")
        assert session.read_value("mirror", "app/key-copy").reveal() == before  # no copy of a value nowhere else
    with open_session(stack) as session:  # the rerun converges
        assert apply_plan(session, build_plan(session, targets, replace=["app/key"]), sleep=lambda _s: None).ok
        assert session.read_value("mirror", "app/key-copy").reveal() == session.read_value("local", "app/key").reveal()
        assert session.read_value("mirror", "app/key-copy").reveal() != before


def test_a_hostile_selector_prints_as_one_inert_line(stack: object) -> None:
    with pytest.raises(CloudsyncError) as refused:
        replacements(stack, BOTH, ["\x1b[31mred\nNo changes."])  # type: ignore[arg-type]
    [diag] = refused.value.diagnostics
    rendered = diag.render()
    assert "\x1b" not in rendered and "\n" not in rendered
    assert "--replace '\\x1b[31mred\\nNo changes.': no declared secret matches" in rendered

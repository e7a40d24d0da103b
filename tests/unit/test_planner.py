"""The planner, table-driven: desired × actual → the changes a user would see."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cloudsync.plan.model import Action, Reason, ValueMode
from cloudsync.plan.planner import DesiredSecret, DesiredValue, plan_changes
from cloudsync.providers.base import RemoteSecret, ValueRecord

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WRITTEN = NOW - timedelta(days=10)
STACK = "payments"

SOURCE = DesiredValue("source", fingerprint="f" * 32, key_id="k1")
GENERATED = DesiredValue("generate", spec="spec1")


def want(**kw: object) -> DesiredSecret:
    base: dict[str, object] = dict(target="t", provider="local", secret="app/x", remote_name="app/x", value=SOURCE,
                                   labels={"env": "dev"}, description="d", readers=frozenset({"api"}))
    base.update(kw)
    return DesiredSecret(**base)  # type: ignore[arg-type]


def have(**kw: object) -> RemoteSecret:
    record = ValueRecord(version="1", fingerprint="f" * 32, key_id="k1", spec=None, written_at=WRITTEN)
    base: dict[str, object] = dict(name="app/x", labels={"env": "dev"}, owner=STACK, managed=True, description="d",
                                   readers=frozenset({"api"}), current_version="1", record=record, revision="r1")
    base.update(kw)
    return RemoteSecret(**base)  # type: ignore[arg-type]


def gen_record(**kw: object) -> ValueRecord:
    return replace(ValueRecord(version="1", spec="spec1", written_at=WRITTEN, key_id="k1", fingerprint="a" * 32),
                   **kw)


CASES = [
    # (id, desired, actual, expected [(address, action, reasons)])
    ("create", [want()], [], [("t:app/x", Action.CREATE, (Reason.VALUE, Reason.ACCESS))]),
    ("create-with-expiry", [want(readers=frozenset(), expires=timedelta(days=90))], [],
     [("t:app/x", Action.CREATE, (Reason.VALUE, Reason.EXPIRY))]),
    ("unchanged", [want()], [have()], [("t:app/x", Action.NOOP, ())]),
    ("value-changed-at-source", [want(value=replace(SOURCE, fingerprint="e" * 32))], [have()],
     [("t:app/x", Action.UPDATE, (Reason.VALUE,))]),
    ("value-changed-out-of-band", [want()], [have(current_version="2")],
     [("t:app/x", Action.UPDATE, (Reason.VALUE,))]),
    ("fingerprint-key-changed", [want(value=replace(SOURCE, key_id="k2"))], [have()],
     [("t:app/x", Action.UPDATE, (Reason.VALUE,))]),
    ("labels", [want(labels={"env": "prod"})], [have()], [("t:app/x", Action.UPDATE, (Reason.LABELS,))]),
    ("description", [want(description="new")], [have()], [("t:app/x", Action.UPDATE, (Reason.DESCRIPTION,))]),
    ("readers", [want(readers=frozenset({"api", "worker"}))], [have()],
     [("t:app/x", Action.UPDATE, (Reason.ACCESS,))]),
    ("readers-unknown-not-compared", [want(readers=frozenset({"x"}))], [have(readers=None)],
     [("t:app/x", Action.NOOP, ())]),
    ("expiry-added", [want(expires=timedelta(days=30))], [have()], [("t:app/x", Action.UPDATE, (Reason.EXPIRY,))]),
    ("expiry-stable", [want(expires=timedelta(days=30))], [have(expires_at=WRITTEN + timedelta(days=30))],
     [("t:app/x", Action.NOOP, ())]),
    ("expiry-removed", [want()], [have(expires_at=WRITTEN)], [("t:app/x", Action.UPDATE, (Reason.EXPIRY,))]),
    ("protection-on", [want(protected=True)], [have()], [("t:app/x", Action.UPDATE, (Reason.OWNERSHIP,))]),
    ("restore-soft-deleted", [want()], [have(deleted=True)], [("t:app/x", Action.RESTORE, ())]),
    ("restore-and-relabel", [want(labels={})], [have(deleted=True)], [("t:app/x", Action.RESTORE, (Reason.LABELS,))]),
    ("delete-undeclared-owned", [], [have()], [("t:app/x", Action.DELETE, ())]),
    ("undeclared-not-owned-untouched", [], [have(owner=None, managed=False)], []),
    ("undeclared-other-stack-untouched", [], [have(owner="other")], []),
    ("already-deleted-not-redeleted", [], [have(deleted=True)], []),
    ("fingerprint-key-secret-ignored", [], [have(name="cloudsync-fingerprint-key-payments")], []),
    ("generated-unchanged", [want(value=GENERATED)], [have(record=gen_record())], [("t:app/x", Action.NOOP, ())]),
    ("generated-spec-changed", [want(value=replace(GENERATED, spec="spec2"))], [have(record=gen_record())],
     [("t:app/x", Action.UPDATE, (Reason.VALUE,))]),
    ("generated-rotation-due", [want(value=GENERATED, rotation=timedelta(days=7))], [have(record=gen_record())],
     [("t:app/x", Action.UPDATE, (Reason.ROTATION,))]),
    ("generated-rotation-not-due", [want(value=GENERATED, rotation=timedelta(days=30))],
     [have(record=gen_record())], [("t:app/x", Action.NOOP, ())]),
    ("metadata-only-hides-value", [want(value=DesiredValue("unknown"))], [have()], [("t:app/x", Action.NOOP, ())]),
    ("metadata-only-still-sees-out-of-band", [want(value=DesiredValue("unknown"))], [have(current_version="9")],
     [("t:app/x", Action.UPDATE, (Reason.VALUE,))]),
    ("no-value-source", [want(value=DesiredValue("none"), readers=frozenset())], [], [("t:app/x", Action.CREATE, ())]),
]


@pytest.mark.parametrize(("desired", "actual", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan_table(desired: list[DesiredSecret], actual: list[RemoteSecret],
                    expected: list[tuple[str, Action, tuple[Reason, ...]]]) -> None:
    plan = plan_changes(STACK, desired, {"t": {r.name: r for r in actual}}, NOW)
    assert [(c.address, c.action, c.reasons) for c in plan.changes] == expected
    assert not plan.diagnostics


def test_unowned_secret_under_a_declared_name_is_a_conflict_not_a_change() -> None:
    plan = plan_changes(STACK, [want(file="s.yaml", line=3)], {"t": {"app/x": have(owner=None, managed=False)}}, NOW)
    assert plan.changes == []
    (diag,) = plan.diagnostics
    assert diag.file == "s.yaml" and diag.line == 3 and "not managed by cloudsync" in diag.message


def test_secret_of_another_stack_is_a_conflict() -> None:
    plan = plan_changes(STACK, [want()], {"t": {"app/x": have(owner="billing")}}, NOW)
    assert plan.changes == [] and "owned by stack 'billing'" in plan.diagnostics[0].message


def test_protected_secret_is_not_deleted_and_the_plan_says_how() -> None:
    plan = plan_changes(STACK, [], {"t": {"app/x": have(protected=True)}}, NOW)
    assert plan.real_changes == []
    assert plan.has_errors and "deletion protection" in plan.diagnostics[0].message
    assert plan.diagnostics[0].hint and "deletion_protection: false" in plan.diagnostics[0].hint


def test_expiry_moves_with_a_new_value() -> None:
    plan = plan_changes(STACK, [want(value=replace(SOURCE, fingerprint="e" * 32), expires=timedelta(days=30))],
                        {"t": {"app/x": have(expires_at=WRITTEN + timedelta(days=30))}}, NOW)
    (change,) = plan.changes
    assert change.reasons == (Reason.VALUE,)
    assert change.after is not None and change.after.expires_at == NOW + timedelta(days=30)


def test_generated_secret_new_target_copies_from_a_healthy_sibling() -> None:
    desired = [want(target="a", value=GENERATED), want(target="b", value=GENERATED)]
    actual = {"a": {"app/x": have(record=gen_record())}, "b": {}}
    plan = plan_changes(STACK, desired, actual, NOW)
    by_target = {c.target: c for c in plan.changes}
    assert by_target["a"].action is Action.NOOP
    assert by_target["b"].action is Action.CREATE
    assert by_target["b"].value is not None and by_target["b"].value.mode is ValueMode.COPY
    assert by_target["b"].value.copy_from == "a"


def test_generated_secret_rotation_regenerates_every_target_together() -> None:
    desired = [want(target="a", value=GENERATED, rotation=timedelta(days=7)),
               want(target="b", value=GENERATED, rotation=timedelta(days=7))]
    fresh = gen_record(written_at=NOW - timedelta(days=1))
    actual = {"a": {"app/x": have(record=gen_record())}, "b": {"app/x": have(record=fresh)}}
    plan = plan_changes(STACK, desired, actual, NOW)
    modes = {c.target: (c.action, c.value.mode if c.value else None) for c in plan.changes}
    assert modes == {"a": (Action.UPDATE, ValueMode.GENERATE), "b": (Action.UPDATE, ValueMode.GENERATE)}


def test_targets_outside_the_selection_are_not_planned() -> None:
    plan = plan_changes(STACK, [want(target="a"), want(target="b")], {"a": {}}, NOW)
    assert [c.target for c in plan.changes] == ["a"]


def test_summary_counts_every_action() -> None:
    desired = [want(secret="s/new", remote_name="s/new"), want(secret="s/same", remote_name="s/same")]
    actual = {"t": {"s/same": have(name="s/same"), "s/gone": have(name="s/gone")}}
    summary = plan_changes(STACK, desired, actual, NOW).summary()
    assert summary == {"create": 1, "update": 0, "delete": 1, "restore": 0, "unchanged": 1}


def test_replication_drift_reported_by_a_provider_is_planned() -> None:
    plan = plan_changes(STACK, [want()], {"t": {"app/x": have(replication_drift=True)}}, NOW)
    assert [(c.action, c.reasons) for c in plan.changes] == [(Action.UPDATE, (Reason.REPLICATION,))]


def test_adopting_an_unowned_secret_plans_an_ownership_update() -> None:
    unowned = have(owner=None, managed=False, record=None)
    plan = plan_changes(STACK, [want(value=DesiredValue("none"), adopt=True)], {"t": {"app/x": unowned}}, NOW)
    (change,) = plan.changes
    assert change.reasons == (Reason.OWNERSHIP,) and "not rewritten" in change.details[-1]
    other_stack = have(owner="billing")
    plan = plan_changes(STACK, [want(adopt=True)], {"t": {"app/x": other_stack}}, NOW)
    assert plan.changes == [] and "a stack never takes another stack's secret" in (plan.diagnostics[0].hint or "")


def test_an_external_rotation_is_expected_and_only_a_late_one_is_reported() -> None:
    external = want(rotation=timedelta(days=30), rotation_by="external")
    rotated_recently = have(current_version="2", current_version_at=NOW - timedelta(days=3))
    plan = plan_changes(STACK, [external], {"t": {"app/x": rotated_recently}}, NOW)
    assert [(c.action, c.reasons) for c in plan.changes] == [(Action.NOOP, ())] and plan.diagnostics == []

    rotated_long_ago = have(current_version="2", current_version_at=NOW - timedelta(days=45))
    plan = plan_changes(STACK, [external], {"t": {"app/x": rotated_long_ago}}, NOW)
    assert [(c.action, c.reasons) for c in plan.changes] == [(Action.NOOP, ())]
    (warning,) = plan.diagnostics
    assert warning.severity.value == "warning" and "rotation is overdue" in warning.message


def test_a_delete_names_its_provider_even_when_nothing_is_declared_in_the_target() -> None:
    plan = plan_changes(STACK, [], {"t": {"app/x": have()}}, NOW, providers={"t": "aws"})
    assert [(c.action, c.provider) for c in plan.changes] == [(Action.DELETE, "aws")]

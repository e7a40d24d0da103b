"""Which old versions a plan retires, table-driven: pure, from the metadata the bulk read holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cloudsync.plan.model import Action, Reason
from cloudsync.plan.planner import DesiredSecret, DesiredValue, plan_changes
from cloudsync.plan.retire import retirement_marker
from cloudsync.providers.base import (
    RETIRE_LABEL,
    RemoteSecret,
    Retirement,
    ValueRecord,
    decode_meta,
    encode_meta,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STACK = "payments"
DAY = timedelta(days=1)


def want(spec: str = "spec1", grace: timedelta | None = DAY, **kw: object) -> DesiredSecret:
    base: dict[str, object] = dict(target="t", provider="local", secret="app/x", remote_name="app/x",
                                   value=DesiredValue("generate", spec=spec), grace=grace)
    base.update(kw)
    return DesiredSecret(**base)  # type: ignore[arg-type]


def have(version: str = "3", retire: Retirement | None = None, **kw: object) -> RemoteSecret:
    record = ValueRecord(version=version, spec="spec1", written_at=NOW - 3 * DAY, key_id="k", fingerprint="a" * 32,
                         retire=retire)
    base: dict[str, object] = dict(name="app/x", owner=STACK, managed=True, current_version=version, record=record,
                                   revision="r")
    base.update(kw)
    return RemoteSecret(**base)  # type: ignore[arg-type]


def pending(version: str = "2", due: datetime = NOW - DAY) -> Retirement:
    return Retirement(version, due, NOW - 10 * DAY)


CASES = [
    # (id, desired, actual, expected action, reasons, versions retired)
    ("nothing-pending", want(), have(), Action.NOOP, (), ()),
    ("grace-not-over", want(), have(retire=pending(due=NOW + DAY)), Action.NOOP, (), ()),
    ("grace-over", want(), have(retire=pending()), Action.UPDATE, (Reason.RETIRE,), ("2",)),
    ("grace-over-exactly-now", want(), have(retire=pending(due=NOW)), Action.UPDATE, (Reason.RETIRE,), ("2",)),
    ("with-a-label-change", want(labels={"a": "b"}), have(retire=pending()), Action.UPDATE,
     (Reason.LABELS, Reason.RETIRE), ("2",)),
    ("new-value-keeps-the-previous-for-its-grace", want(spec="spec2"), have(), Action.UPDATE, (Reason.VALUE,), ()),
    ("new-value-grace-0", want(spec="spec2", grace=timedelta(0)), have(), Action.UPDATE,
     (Reason.VALUE, Reason.RETIRE), ("3",)),
    ("new-value-supersedes-a-pending-one-again", want(spec="spec2"), have(retire=pending(due=NOW + DAY)),
     Action.UPDATE, (Reason.VALUE, Reason.RETIRE), ("2",)),
    ("grace-0-and-a-due-one", want(spec="spec2", grace=timedelta(0)), have(retire=pending()), Action.UPDATE,
     (Reason.VALUE, Reason.RETIRE), ("2", "3")),
    # Safety: never the current version, never one cloudsync has no record of.
    ("marker-naming-the-current-version", want(), have(retire=pending(version="3")), Action.NOOP, (), ()),
    ("marker-naming-what-cloudsync-wrote-last", want(), have(version="3", current_version="4",
                                                            retire=pending(version="3")),
     Action.UPDATE, (Reason.VALUE,), ()),
    ("source-values-are-not-retired", want(spec="spec2", grace=None), have(), Action.UPDATE, (Reason.VALUE,), ()),
    ("no-record-no-retirement", want(spec="spec2", grace=timedelta(0)), have(record=None), Action.UPDATE,
     (Reason.VALUE,), ()),
    ("aws-label-missing-is-not-a-version", want(spec="spec2", grace=timedelta(0)),
     have(version="(staging label missing)", current_version="v9"), Action.UPDATE, (Reason.VALUE,), ()),
    ("deleted-secret-restored-not-retired", want(), have(retire=pending(), deleted=True), Action.RESTORE, (), ()),
]


@pytest.mark.parametrize(("desired", "actual", "action", "reasons", "retired"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_retirements(desired: DesiredSecret, actual: RemoteSecret, action: Action, reasons: tuple[Reason, ...],
                     retired: tuple[str, ...]) -> None:
    plan = plan_changes(STACK, [desired], {"t": {"app/x": actual}}, NOW)
    (change,) = plan.changes
    assert (change.action, change.reasons) == (action, reasons)
    assert tuple(r.version for r in change.retire) == retired
    assert all(d.startswith("retire: ") for d in change.details if "retire" in d)


def test_the_plan_says_which_version_and_since_when() -> None:
    (change,) = plan_changes(STACK, [want()], {"t": {"app/x": have(retire=pending())}}, NOW).changes
    assert change.details == ("retire: previous version 2 (written 10d ago, grace ended 1d ago)",)


def test_a_value_write_records_the_version_it_supersedes_and_when_it_retires() -> None:
    (change,) = plan_changes(STACK, [want(spec="spec2", grace=2 * DAY)], {"t": {"app/x": have()}}, NOW).changes
    assert change.value is not None and change.value.retire_after == 2 * DAY
    assert retirement_marker(change, NOW) == Retirement("3", NOW + 2 * DAY, NOW - 3 * DAY)


def test_a_grace_override_replans_idempotently() -> None:
    from cloudsync.plan.retire import plan_retirements

    plan = plan_changes(STACK, [want(spec="spec2")], {"t": {"app/x": have()}}, NOW)
    (change,) = plan.changes
    assert change.retire == ()
    assert change.value is not None
    urgent = replace(change, value=replace(change.value, grace=timedelta(0)))
    # `--grace 0` on the write wins over the declared day.
    (again,) = plan_retirements([urgent], {change.address: DAY}, NOW)
    assert [r.version for r in again.retire] == ["3"] and again.reasons == (Reason.VALUE, Reason.RETIRE)
    assert plan_retirements([again], {change.address: DAY}, NOW) == [again]


@pytest.mark.parametrize("label", ["", "3", "3_1_x", "../x_1_2", "3__99999999999999", "a" * 41 + "_1_2"])
def test_a_malformed_marker_is_ignored(label: str) -> None:
    meta = decode_meta({"managed-by": "cloudsync", "cloudsync-stack": "s", "cloudsync-version": "3",
                        RETIRE_LABEL: label})
    assert meta.record is not None and meta.record.retire is None


def test_the_marker_fits_every_clouds_label_rules() -> None:
    marker = Retirement("0b9a3c1e-6a2f-4f1e-9d7c-1234567890ab", NOW, NOW - DAY)
    labels = encode_meta("s", None, ValueRecord(version="x", retire=marker))
    assert len(labels[RETIRE_LABEL]) <= 63 and labels[RETIRE_LABEL].islower()
    assert decode_meta(labels).record.retire == marker  # type: ignore[union-attr]

"""How value settings reach the planner: rotation ownership, certificate renewal, CA renewal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloudsync.diagnostics import Severity
from cloudsync.plan.model import Action, Reason, ValueMode
from cloudsync.plan.planner import DesiredSecret, DesiredValue, plan_changes
from cloudsync.providers.base import RemoteSecret, ValueRecord

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STACK = "payments"


def want(value: DesiredValue, **kw: object) -> DesiredSecret:
    base: dict[str, object] = dict(target="t", provider="local", secret="app/x", remote_name="app/x", value=value)
    base.update(kw)
    return DesiredSecret(**base)  # type: ignore[arg-type]


def have(written: datetime, *, current: str = "1", spec: str | None = "s1", fingerprint: str = "f" * 32,
         **kw: object) -> RemoteSecret:
    record = ValueRecord(version="1", fingerprint=fingerprint, key_id="k1", spec=spec, written_at=written)
    return RemoteSecret(name="app/x", owner=STACK, managed=True, current_version=current, record=record, **kw)  # type: ignore[arg-type]


def plan(desired: DesiredSecret, actual: RemoteSecret | None, *, metadata_only: bool = False):  # type: ignore[no-untyped-def]
    return plan_changes(STACK, [desired], {"t": {"app/x": actual} if actual else {}}, NOW, metadata_only=metadata_only)


SOURCE = DesiredValue("source", fingerprint="f" * 32, key_id="k1")
GENERATED = DesiredValue("generate", spec="s1")
EXTERNAL = {"rotation": timedelta(days=30), "rotation_by": "external"}


# --- rotation by an external system ---------------------------------------------------------


def test_an_external_rotation_is_expected_not_undone() -> None:
    for value in (SOURCE, GENERATED, DesiredValue("unknown")):
        result = plan(want(value, **EXTERNAL), have(NOW - timedelta(days=3), current="7"))
        assert [(c.action, c.reasons) for c in result.changes] == [(Action.NOOP, ())]
        assert result.diagnostics == []


def test_with_external_rotation_source_and_setting_changes_are_not_written_over_the_owner() -> None:
    changed = [DesiredValue("source", fingerprint="e" * 32, key_id="k1"), DesiredValue("generate", spec="s2")]
    for value in changed:
        result = plan(want(value, **EXTERNAL), have(NOW - timedelta(days=3)))
        assert result.changes[0].action is Action.NOOP


def test_an_external_secret_gets_its_first_value_from_cloudsync() -> None:
    result = plan(want(GENERATED, **EXTERNAL), None)
    assert result.changes[0].action is Action.CREATE and result.changes[0].value is not None
    assert result.changes[0].value.mode is ValueMode.GENERATE


def test_an_overdue_external_rotation_is_a_warning_naming_the_address() -> None:
    result = plan(want(GENERATED, file="secrets/db.yaml", line=4, **EXTERNAL), have(NOW - timedelta(days=31)))
    assert result.changes[0].action is Action.NOOP
    [warning] = result.diagnostics
    assert warning.severity is Severity.WARNING and (warning.file, warning.line) == ("secrets/db.yaml", 4)
    assert warning.message == ("t:app/x: rotation is overdue: the value was last changed 2026-10-28T12:00Z, and the "
                               "external system that owns it rotates it every 30d")
    assert not result.has_errors
    # Metadata-only plans see it too: it needs no value.
    assert plan(want(DesiredValue("unknown"), file="secrets/db.yaml", line=4, **EXTERNAL), have(NOW - timedelta(days=31)),
                metadata_only=True).diagnostics == [warning]


@dataclass(frozen=True)
class TimedRemote(RemoteSecret):
    """A provider that reports when the current version was written."""

    current_version_at: datetime | None = None


def test_after_an_external_rotation_its_time_decides_whether_the_next_one_is_late() -> None:
    old = NOW - timedelta(days=90)
    record = ValueRecord(version="1", spec="s1", written_at=old)
    for rotated, late in ((NOW - timedelta(days=29), False), (NOW - timedelta(days=45), True)):
        remote = TimedRemote(name="app/x", owner=STACK, managed=True, current_version="3", record=record,
                             current_version_at=rotated)
        result = plan(want(GENERATED, **EXTERNAL), remote)
        assert result.changes[0].action is Action.NOOP
        assert bool(result.diagnostics) is late


def test_rotation_by_cloudsync_still_regenerates_and_undoes_outside_writes() -> None:
    result = plan(want(GENERATED, rotation=timedelta(days=30)), have(NOW - timedelta(days=31)))
    assert result.changes[0].reasons == (Reason.ROTATION,)
    result = plan(want(SOURCE), have(NOW - timedelta(days=1), current="2"))
    assert result.changes[0].reasons == (Reason.VALUE,)


# --- certificates -----------------------------------------------------------------------------


CERT = DesiredValue("generate", spec="s1", renew_after=timedelta(days=60), issuer="app/ca")


def test_a_certificate_is_renewed_once_two_thirds_of_its_lifetime_have_passed() -> None:
    fresh = plan(want(CERT), have(NOW - timedelta(days=59)))
    assert fresh.changes[0].action is Action.NOOP
    due = plan(want(CERT), have(NOW - timedelta(days=60)))
    change = due.changes[0]
    assert (change.action, change.reasons) == (Action.UPDATE, (Reason.ROTATION,))
    assert change.value is not None and change.value.mode is ValueMode.GENERATE and change.value.regenerate
    assert change.details == ("value: certificate expires 2026-12-28T12:00Z; renewed once two thirds of its 90d "
                              "lifetime have passed",)


def test_a_certificate_issued_before_its_ca_was_renewed_is_reissued() -> None:
    issued = NOW - timedelta(days=5)
    older_ca = plan(want(DesiredValue("generate", spec="s1", renew_after=timedelta(days=60), issuer="app/ca",
                                      issuer_written_at=issued - timedelta(days=1))), have(issued))
    assert older_ca.changes[0].action is Action.NOOP
    newer_ca = plan(want(DesiredValue("generate", spec="s1", renew_after=timedelta(days=60), issuer="app/ca",
                                      issuer_written_at=issued + timedelta(hours=1))), have(issued))
    assert newer_ca.changes[0].reasons == (Reason.ROTATION,)
    assert "its CA app/ca was renewed" in newer_ca.changes[0].details[0]


def test_new_settings_reissue_a_certificate() -> None:
    result = plan(want(CERT), have(NOW - timedelta(days=1), spec="s0"))
    assert result.changes[0].reasons == (Reason.VALUE,)

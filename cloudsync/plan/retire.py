"""Which old versions a plan retires: pure, from the metadata the bulk read already holds.

When cloudsync writes a new value of a generated secret, apply stores in the secret's own
metadata which version the write superseded and when its grace period ends
(``cloudsync-retire``, see :class:`Retirement`). A later plan reads it from the bulk
listing, at no extra call, and plans the retirement as a change with the reason
``retire``; only then does apply touch that version (and the adapter re-checks that
cloudsync wrote it and that it is not current).

A change retires, after its own write if it has one:

- the version its marker names once the grace period has ended;
- with a grace of 0, the version its own value write supersedes (a confirmed leak);
- a version still waiting for its grace period when the value is written again: it is no
  longer the previous value, and one marker holds one version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from cloudsync.plan.model import REASON_ORDER, Action, Change, Reason
from cloudsync.providers.base import RemoteSecret, Retirement, RetireRequest, WriteRequest, is_version_id


def plan_retirements(changes: Sequence[Change], graces: Mapping[str, timedelta | None], now: datetime) -> list[Change]:
    """``changes`` with the retirements they carry; ``graces`` by address, as declared (None: never retired).

    A value write's own ``grace`` (``--grace``) overrides the declared one. Idempotent: the
    retirements are recomputed from ``before`` and ``value`` each time, so a step that adds
    value writes afterwards (``follow_sources``) calls it again.
    """
    return [_with_retirements(c, graces.get(c.address), now) for c in changes]


def retirement_marker(change: Change, written_at: datetime) -> Retirement | None:
    """What a value write records about the version it supersedes (apply stores it with the value)."""
    previous = superseded(change.before)
    grace = change.value.retire_after if change.value is not None else None
    if previous is None or grace is None or change.before is None or change.before.record is None:
        return None
    return Retirement(previous, written_at + max(grace, timedelta(0)), change.before.record.written_at)


def retire_requests(change: Change, stack: str, digest: str) -> list[WriteRequest]:
    """The typed requests that disable the versions ``change`` retires, in order."""
    return [RetireRequest(stack=stack, name=change.remote_name, reasons=frozenset({Reason.RETIRE}),
                          before=change.before, retirement=r,
                          token=hashlib.sha256(f"{digest}\n{change.address}\nretire {r.version}".encode()).hexdigest()[:40])
            for r in change.retire]


def superseded(before: RemoteSecret | None) -> str | None:
    """The version a new value write supersedes, if cloudsync wrote it and it can be retired."""
    record = before.record if before is not None else None
    if before is None or record is None or not is_version_id(record.version):
        return None
    return record.version


def _with_retirements(change: Change, grace: timedelta | None, now: datetime) -> Change:
    base = _without_retirements(change)
    before = base.before
    if before is None or before.deleted or base.action in (Action.CREATE, Action.DELETE):
        return base
    previous = superseded(before)
    if base.writes_value and base.value is not None:
        if base.value.grace is not None:  # `--grace` on a replaced value (and what follows it) wins
            grace = base.value.grace
        base = replace(base, value=replace(base.value, retire_after=grace if previous is not None else None))
    record = before.record
    marker = record.retire if record is not None else None
    retire: list[Retirement] = []
    details: list[str] = []
    # Never the current version, nor the one cloudsync's record says is its latest write.
    if marker is not None and record is not None and marker.version not in (before.current_version, record.version):
        if marker.due <= now:
            retire.append(marker)
            details.append(f"retire: previous version {marker.version} ({_written(marker, now)}, "
                           f"grace ended {_ago(now - marker.due)})")
        elif base.writes_value and marker.version != previous:
            retire.append(marker)
            details.append(f"retire: version {marker.version} ({_written(marker, now)}): superseded again "
                           "before its grace period ended")
    if base.writes_value and grace is not None and grace <= timedelta(0) and previous is not None \
            and all(r.version != previous for r in retire):
        retire.append(Retirement(previous, now, record.written_at if record is not None else None))
        details.append(f"retire: previous version {previous} once the new value is written (grace 0)")
    if not retire:
        return base
    reasons = tuple(sorted({*base.reasons, Reason.RETIRE}, key=REASON_ORDER.index))
    return replace(base, action=Action.UPDATE if base.action is Action.NOOP else base.action, reasons=reasons,
                   retire=tuple(retire), details=(*base.details, *details))


def _without_retirements(change: Change) -> Change:
    if not change.retire:
        return change
    reasons = tuple(r for r in change.reasons if r is not Reason.RETIRE)
    details = tuple(d for d in change.details if not d.startswith("retire: "))
    action = Action.NOOP if not reasons and change.action is Action.UPDATE else change.action
    return replace(change, action=action, reasons=reasons, details=details, retire=())


def _written(retirement: Retirement, now: datetime) -> str:
    if retirement.written_at is None:
        return "written by cloudsync"
    return f"written {_ago(now - retirement.written_at)}"


def _ago(age: timedelta) -> str:
    if age < timedelta(minutes=1):
        return "just now"
    minutes = int(age.total_seconds() // 60)
    shown = f"{minutes // 1440}d" if minutes >= 1440 else f"{minutes // 60}h" if minutes >= 60 else f"{minutes}m"
    return f"{shown} ago"

"""The planner: a pure function from desired and actual state to a :class:`Plan`.

No I/O happens here. The engine (:mod:`cloudsync.plan.build`) gathers the desired state
(with fingerprints, never values) and the actual state (from providers), and calls
:func:`plan_changes`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from cloudsync.config.durations import format_duration
from cloudsync.diagnostics import Diagnostic, Severity
from cloudsync.plan.model import REASON_ORDER, Action, Change, Plan, Reason, ValueMode, ValuePlan
from cloudsync.providers.base import RemoteSecret, SecretState, is_reserved
from cloudsync.values.fingerprint import short

EXPIRY_TOLERANCE = timedelta(minutes=1)


@dataclass(frozen=True)
class DesiredValue:
    kind: Literal["source", "generate", "unknown", "none"]
    fingerprint: str | None = None
    key_id: str | None = None
    spec: str | None = None
    renew_after: timedelta | None = None  # generated certificates: renewed once this old
    issuer: str | None = None  # generated certificates: the declared CA that signs them
    issuer_written_at: datetime | None = None  # when the CA's current value was written, when known


@dataclass(frozen=True)
class DesiredSecret:
    """One secret in one target, as the files declare it (no plaintext)."""

    target: str
    provider: str
    secret: str
    remote_name: str
    value: DesiredValue
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None
    readers: frozenset[str] | None = None
    protected: bool = False
    purge_on_delete: bool = False
    adopt: bool = False  # take ownership of an unowned secret of this name
    rotation: timedelta | None = None
    rotation_by: Literal["cloudsync", "external"] = "cloudsync"  # external: another system changes the value
    expires: timedelta | None = None
    file: str | None = None
    line: int | None = None

    @property
    def address(self) -> str:
        return f"{self.target}:{self.secret}"


def plan_changes(
    stack: str,
    desired: Sequence[DesiredSecret],
    actual: Mapping[str, Mapping[str, RemoteSecret]],
    now: datetime,
    *,
    metadata_only: bool = False,
    providers: Mapping[str, str] | None = None,
    replace: Collection[str] = (),
    grace: timedelta | None = None,
) -> Plan:
    """Compare ``desired`` with ``actual`` (per target, by remote name) and list the changes.

    ``providers`` names each target's provider; it is needed where a target has deletes and
    nothing declared any more (otherwise it is taken from the declarations). ``replace``
    names generated secrets that get a new value now (``--replace``), with ``grace`` for
    the value they replace.
    """
    kinds = {d.target: d.provider for d in desired}
    kinds.update(providers or {})
    changes: list[Change] = []
    diagnostics: list[Diagnostic] = []
    declared: dict[str, set[str]] = defaultdict(set)
    for want in desired:
        if want.target not in actual:
            continue
        declared[want.target].add(want.remote_name)
        have = actual[want.target].get(want.remote_name)
        change = _compare(stack, want, have, now, diagnostics)
        if change is not None:
            changes.append(change)
    specs = {(d.target, d.secret): d.value.spec for d in desired if d.value.kind == "generate"}
    if replace:
        changes = [_replaced(c, specs, grace) if c.secret in replace else c for c in changes]
    changes = _coordinate_generated(changes, specs)
    for target, secrets in actual.items():
        for name, have in sorted(secrets.items()):
            if have.owner != stack or have.deleted or is_reserved(name) or name in declared[target]:
                continue
            address = f"{target}:{name}"
            if have.protected:
                diagnostics.append(Diagnostic(
                    f"{address} is no longer declared but has deletion protection; it is kept",
                    hint="declare it again with deletion_protection: false and apply, then remove the declaration"))
                continue
            changes.append(Change(address=address, target=target, provider=kinds.get(target, ""), secret=name,
                                  remote_name=name, action=Action.DELETE, before=have,
                                  details=("no longer declared",)))
    changes.sort(key=lambda c: (c.target, c.secret))
    return Plan(stack=stack, changes=changes, created_at=now, metadata_only=metadata_only,
                targets=sorted(actual), diagnostics=diagnostics)


def _state(want: DesiredSecret, expires_at: datetime | None) -> SecretState:
    return SecretState(name=want.remote_name, labels=dict(want.labels), description=want.description,
                       expires_at=expires_at, readers=want.readers, protected=want.protected,
                       purge_on_delete=want.purge_on_delete)


def _value_plan(want: DesiredSecret) -> ValuePlan:
    v = want.value
    if v.kind == "generate":
        return ValuePlan(ValueMode.GENERATE, spec=v.spec)
    if v.kind == "source":
        return ValuePlan(ValueMode.SOURCE, fingerprint=v.fingerprint, key_id=v.key_id)
    return ValuePlan(ValueMode.UNKNOWN)


def _compare(stack: str, want: DesiredSecret, have: RemoteSecret | None, now: datetime,
             diagnostics: list[Diagnostic]) -> Change | None:
    base: dict[str, Any] = dict(address=want.address, target=want.target, provider=want.provider,
                                secret=want.secret, remote_name=want.remote_name, file=want.file, line=want.line)
    if have is None:
        created: list[Reason] = []
        value = None
        if want.value.kind != "none":
            created.append(Reason.VALUE)
            value = _value_plan(want)
        if want.readers:
            created.append(Reason.ACCESS)
        if want.expires is not None:
            created.append(Reason.EXPIRY)
        expires_at = now + want.expires if want.expires else None
        return Change(**base, action=Action.CREATE, reasons=tuple(created),
                      after=_state(want, expires_at), value=value)
    adopting = want.adopt and not have.managed
    if have.owner != stack and not adopting:
        who = f"owned by stack {have.owner!r}" if have.managed and have.owner else "not managed by cloudsync"
        diagnostics.append(Diagnostic(
            f"{want.address} already exists in the target as {want.remote_name!r} and is {who}; "
            "cloudsync never changes a secret it does not own",
            file=want.file, line=want.line,
            hint=(f"adopt it with `cloudsync import --target {want.target} --adopt`, "
                  "or rename the declaration (or set a names: override)") if not have.managed else
            "rename the declaration (or set a names: override); a stack never takes another stack's secret"))
        return None

    reasons: list[Reason] = []
    details: list[str] = []
    value_plan, value_reasons, value_details = _compare_value(want, have, now, diagnostics)
    reasons += value_reasons
    details += value_details
    if dict(have.labels) != dict(want.labels):
        reasons.append(Reason.LABELS)
        details.append("labels: " + _dict_diff(have.labels, want.labels))
    if (have.description or None) != (want.description or None):
        reasons.append(Reason.DESCRIPTION)
        details.append("description changed")
    if have.replication_drift:
        reasons.append(Reason.REPLICATION)
        details.append("replication: the replica regions differ from the target's")
    if want.readers is not None and have.readers is not None and have.readers != want.readers:
        reasons.append(Reason.ACCESS)
        details.append("readers: " + _set_diff(have.readers, want.readers))
    written = have.record.written_at if have.record else None
    current_want = (written or now) + want.expires if want.expires else None
    if not _same_time(have.expires_at, current_want):
        reasons.append(Reason.EXPIRY)
        details.append(f"expiry: {_when(have.expires_at)} -> {_when(current_want)}")
    if adopting:
        reasons.append(Reason.OWNERSHIP)
        kept = "" if Reason.VALUE in value_reasons else " (the value is not rewritten)"
        details.append(f"ownership: adopted by stack {stack}{kept}")
    elif have.protected != want.protected or have.purge_on_delete != want.purge_on_delete:
        reasons.append(Reason.OWNERSHIP)
        details.append(f"deletion protection: {_onoff(have.protected)} -> {_onoff(want.protected)}"
                       if have.protected != want.protected else
                       f"purge on delete: {_onoff(have.purge_on_delete)} -> {_onoff(want.purge_on_delete)}")
    if value_plan is not None and value_plan.mode is not ValueMode.UNKNOWN:
        expires_at = now + want.expires if want.expires else None
    else:
        expires_at = current_want
    action = Action.RESTORE if have.deleted else (Action.UPDATE if reasons else Action.NOOP)
    if have.deleted:
        details.insert(0, "scheduled for deletion / soft-deleted: it is restored")
    return Change(**base, action=action, reasons=tuple(sorted(set(reasons), key=REASON_ORDER.index)),
                  before=have, after=_state(want, expires_at), value=value_plan, details=tuple(details))


def _compare_value(want: DesiredSecret, have: RemoteSecret, now: datetime,
                   diagnostics: list[Diagnostic] | None = None) -> tuple[ValuePlan | None, list[Reason], list[str]]:
    v = want.value
    record = have.record
    if v.kind == "none":
        return None, [], []
    if have.current_version is None or record is None:
        return _value_plan(want), [Reason.VALUE], ["value: none written by cloudsync yet"]
    if want.rotation_by == "external":
        # Another system owns the value once it exists: its new versions are expected, never
        # undone; only a rotation that is late is worth telling.
        if diagnostics is not None:
            diagnostics.extend(_overdue(want, have, now))
        return None, [], []
    if have.value_drifted:
        return _value_plan(want), [Reason.VALUE], [
            f"value: changed outside cloudsync (version {have.current_version} is current, cloudsync wrote {record.version})"]
    if v.kind == "unknown":
        return ValuePlan(ValueMode.UNKNOWN), [], []
    if v.kind == "source":
        if record.key_id != v.key_id or record.fingerprint is None:
            return _value_plan(want), [Reason.VALUE], ["value: written under another fingerprint key; rewritten"]
        if record.fingerprint != v.fingerprint:
            return _value_plan(want), [Reason.VALUE], [
                f"value: changed at its source (fingerprint {short(record.fingerprint)} -> {short(v.fingerprint)})"]
        return None, [], []
    # generate
    regenerate = replace(_value_plan(want), regenerate=True)
    if record.spec != v.spec:
        return regenerate, [Reason.VALUE], ["value: generator settings changed; a new value is generated"]
    written = record.written_at
    if v.issuer_written_at is not None and (written is None or written < v.issuer_written_at):
        return regenerate, [Reason.ROTATION], [
            f"value: its CA {v.issuer} was renewed ({_when(v.issuer_written_at)}) after it was issued; reissued"]
    if v.renew_after is not None and (written is None or now - written >= v.renew_after):
        lifetime = v.renew_after * 3 / 2
        return regenerate, [Reason.ROTATION], [
            f"value: certificate expires {_when(written + lifetime) if written else 'at an unknown time'}; "
            f"renewed once two thirds of its {format_duration(lifetime)} lifetime have passed"]
    if want.rotation is not None and (written is None or now - written >= want.rotation):
        return regenerate, [Reason.ROTATION], [
            f"value: rotation due (written {_when(written)}, every {format_duration(want.rotation)})"]
    return None, [], []


def _replaced(change: Change, specs: Mapping[tuple[str, str], str | None], grace: timedelta | None) -> Change:
    """``change`` writing a new generated value because the operator asked for one."""
    if (change.target, change.secret) not in specs or change.action is Action.DELETE:
        return change  # only generated values are replaced (plan/replace.py refuses the others)
    kept = tuple(d for d in change.details if not d.startswith("value:"))
    why = "value: replaced on demand (--replace): a new value is generated" + grace_note(grace)
    return replace(change, action=Action.UPDATE if change.action is Action.NOOP else change.action,
                   reasons=tuple(sorted({*change.reasons, Reason.REPLACE}, key=REASON_ORDER.index)),
                   value=ValuePlan(ValueMode.GENERATE, spec=specs[(change.target, change.secret)], regenerate=True,
                                   grace=grace),
                   details=(*kept, why))


def grace_note(grace: timedelta | None) -> str:
    """How a plan line tells ``--grace`` (nothing when it was not given)."""
    if grace is None:
        return ""
    return f"; the replaced value stays usable for {format_duration(grace) if grace else 'no time'} (--grace)"


def _overdue(want: DesiredSecret, have: RemoteSecret, now: datetime) -> list[Diagnostic]:
    """A warning when an externally rotated value has not changed within its rotation period."""
    record = have.record
    if want.rotation is None or record is None:
        return []
    # Rotated at least once since cloudsync wrote it? Then when, only providers that report the
    # current version's creation time can tell (RemoteSecret.current_version_at).
    changed = have.current_version_at if have.value_drifted else record.written_at
    if changed is None or now - changed < want.rotation:
        return []
    return [Diagnostic(
        f"{want.address}: rotation is overdue: the value was last changed {_when(changed)}, and the external system "
        f"that owns it rotates it every {format_duration(want.rotation)}",
        severity=Severity.WARNING, file=want.file, line=want.line,
        hint="check the rotation job (e.g. the rotation Lambda or database operator) for this secret")]


def _coordinate_generated(changes: list[Change], specs: Mapping[tuple[str, str], str | None]) -> list[Change]:
    """Keep one value per generated secret across its targets.

    A target that only lacks the value (new, or written over out of band) copies it from a
    sibling target whose value is current; when the value itself must change (rotation,
    new generator settings) or no sibling holds it, one new value is generated for all.
    """
    by_secret: dict[str, list[int]] = defaultdict(list)
    for i, change in enumerate(changes):
        if (change.target, change.secret) in specs:
            by_secret[change.secret].append(i)
    for indexes in by_secret.values():
        writing = [i for i in indexes if changes[i].writes_value]
        if not writing:
            continue
        fresh = any(changes[i].value.regenerate for i in writing)  # type: ignore[union-attr]
        healthy = [changes[i].target for i in indexes
                   if not changes[i].writes_value and changes[i].action is not Action.RESTORE]
        if not fresh and healthy:
            for i in writing:
                old = changes[i]
                changes[i] = replace(old, value=ValuePlan(ValueMode.COPY, spec=old.value.spec,  # type: ignore[union-attr]
                                                          copy_from=healthy[0]),
                                     details=(*old.details, f"value: copied from {healthy[0]}"))
            continue
        for i in indexes:
            old = changes[i]
            if old.writes_value:
                continue
            reasons = tuple(sorted({*old.reasons, Reason.ROTATION if fresh else Reason.VALUE},
                                   key=REASON_ORDER.index))
            changes[i] = replace(old, action=Action.UPDATE if old.action is Action.NOOP else old.action,
                                 reasons=reasons,
                                 value=ValuePlan(ValueMode.GENERATE, spec=specs[(old.target, old.secret)]),
                                 details=(*old.details, "value: regenerated together with its other targets"))
    return changes


def _dict_diff(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    parts = [f"+{k}={new[k]}" for k in sorted(new.keys() - old.keys())]
    parts += [f"~{k}: {old[k]} -> {new[k]}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    parts += [f"-{k}" for k in sorted(old.keys() - new.keys())]
    return ", ".join(parts)


def _set_diff(old: frozenset[str], new: frozenset[str]) -> str:
    return ", ".join([f"+{r}" for r in sorted(new - old)] + [f"-{r}" for r in sorted(old - new)])


def _same_time(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= EXPIRY_TOLERANCE


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ") if moment else "none"


def _onoff(flag: bool) -> str:
    return "on" if flag else "off"

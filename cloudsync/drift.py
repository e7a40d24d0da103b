"""Drift: actual state that changed outside cloudsync, or exists without being declared.

``cloudsync drift`` is read-only and needs no value: it is a metadata-only plan whose
differences are classified per address into kinds, plus the unowned secrets found inside
the stack's name scope. Known drift can be ignored by address glob and kind, each entry
with a reason and an end date; expired entries stop applying and are reported.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from cloudsync.audit import audit_path
from cloudsync.config.loader import Stack, _read_yaml, _validate
from cloudsync.config.models import DriftIgnore, IgnoreFile
from cloudsync.config.names import translate
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Diagnostics, Severity
from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.providers.base import RemoteSecret, is_reserved

IGNORE_FILE = ".cloudsyncignore"
FORMAT_VERSION = 1


class DriftKind(StrEnum):
    VALUE = "value"
    METADATA = "metadata"
    ACCESS = "access"
    MISSING = "missing"
    ORPHAN = "orphan"
    UNMANAGED = "unmanaged"
    INHERITED = "inherited"  # an undeclared principal can read through a grant at a broader scope


KIND_ORDER = list(DriftKind)
_METADATA_REASONS = {Reason.LABELS, Reason.DESCRIPTION, Reason.EXPIRY, Reason.OWNERSHIP, Reason.REPLICATION}


@dataclass(frozen=True)
class Drift:
    address: str
    target: str
    secret: str
    kind: DriftKind
    detail: str
    principal: str | None = None  # inherited: who can read
    via: str | None = None  # inherited: the scope kind the grant is bound at

    def as_dict(self) -> dict[str, str]:
        found = {"address": self.address, "target": self.target, "secret": self.secret,
                 "kind": self.kind.value, "detail": self.detail}
        if self.principal is not None:
            found["principal"] = self.principal
        if self.via is not None:
            found["via"] = self.via
        return found


@dataclass
class DriftReport:
    stack: str
    targets: list[str]
    drifted: list[Drift]
    ignored: list[Drift] = field(default_factory=list)
    checked: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = Counter(d.kind for d in self.drifted)
        return {**{k.value: counts[k] for k in DriftKind}, "total": len(self.drifted),
                "ignored": len(self.ignored), "checked": self.checked}

    def as_dict(self) -> dict[str, object]:
        return {"format_version": FORMAT_VERSION, "stack": self.stack, "targets": self.targets,
                "drifted": [d.as_dict() for d in self.drifted], "summary": self.summary(),
                "ignored": [d.as_dict() for d in self.ignored],
                "diagnostics": [d.as_dict() for d in self.diagnostics]}


AUDIT_TAIL = 8 * 1024 * 1024  # the audit log only grows: its last 8 MiB hold the recent applies


@dataclass(frozen=True)
class CloudsyncDelete:
    """An apply of this repository deleted the secret (from the audit log)."""

    apply: str
    time: str


def deletes_by_cloudsync(path: Path) -> dict[str, CloudsyncDelete] | None:
    """Addresses whose last applied change in the audit log is a delete; ``None`` without a log.

    A soft-deleted secret looks the same in the target whoever deleted it; the audit log is
    where cloudsync records its own deletes, so drift can tell them from out-of-band ones.
    """
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - AUDIT_TAIL))
            tail = log.read(AUDIT_TAIL)
    except OSError:
        return None
    found: dict[str, CloudsyncDelete] = {}
    for raw in tail.split(b"\n"):
        try:
            event = json.loads(raw)
        except ValueError:
            continue  # the cut first line, or a line a crash left half-written
        if not isinstance(event, dict) or event.get("event") != "change" or event.get("outcome") != "applied":
            continue
        address = event.get("address")
        if not isinstance(address, str):
            continue
        if event.get("action") == Action.DELETE.value:
            found[address] = CloudsyncDelete(str(event.get("apply", "")), str(event.get("time", "")))
        else:
            found.pop(address, None)  # created or restored since
    return found


def _readers_detail(change: Change) -> str:
    """Who differs, in words: an extra out-of-band grant is not a reader "removed"."""
    have = change.before.readers if change.before else None
    want = change.after.readers if change.after else None
    if have is None or want is None:
        return next((d for d in change.details if d.startswith("readers:")), "readers differ")
    parts = []
    if extra := sorted(have - want):
        one = len(extra) == 1
        parts.append(f"extra reader{'' if one else 's'} granted outside cloudsync: {', '.join(extra)} "
                     f"(apply removes {'it' if one else 'them'})")
    if missing := sorted(want - have):
        one = len(missing) == 1
        parts.append(f"declared reader{'' if one else 's'} missing in the target: {', '.join(missing)} "
                     f"(apply grants {'it' if one else 'them'} again)")
    return "; ".join(parts) or "readers differ"


def _missing_detail(change: Change, deletes: Mapping[str, CloudsyncDelete] | None) -> str:
    done = deletes.get(change.address) if deletes is not None else None
    again = "apply restores it" if change.action is Action.RESTORE else "apply creates it again"
    if done is not None:
        return f"deleted by cloudsync (apply {done.apply}, {done.time}) and declared again since: {again}"
    if change.action is Action.CREATE:
        return "declared but not in the target (deleted outside cloudsync, or never applied)"
    if deletes is None:
        return "soft-deleted in the target (recoverable: apply restores it)"
    return "deleted outside cloudsync: no apply in the audit log deleted it (recoverable: apply restores it)"


def _from_change(change: Change, deletes: Mapping[str, CloudsyncDelete] | None = None) -> list[Drift]:
    def make(kind: DriftKind, detail: str) -> Drift:
        return Drift(change.address, change.target, change.secret, kind, detail)

    if change.action in (Action.CREATE, Action.RESTORE):
        return [make(DriftKind.MISSING, _missing_detail(change, deletes))]
    if change.action is Action.DELETE:
        return [make(DriftKind.ORPHAN, "owned by the stack but no longer declared")]
    found: list[Drift] = []
    reasons = set(change.reasons)
    if Reason.VALUE in reasons:
        detail = next((d for d in change.details if d.startswith("value:")), "value: differs")
        found.append(make(DriftKind.VALUE, detail.removeprefix("value: ")))
    metadata = sorted(reasons & _METADATA_REASONS, key=list(Reason).index)
    if metadata:
        lines = [d for d in change.details if d.split(":", 1)[0] in {"labels", "description", "expiry", "ownership",
                                                                     "deletion protection", "purge on delete",
                                                                     "replication"}]
        found.append(make(DriftKind.METADATA, "; ".join(lines) or ", ".join(r.value for r in metadata)))
    if Reason.ACCESS in reasons:
        found.append(make(DriftKind.ACCESS, _readers_detail(change)))
    return found


def name_scopes(stack: Stack) -> list[str]:
    """Logical name prefixes whose unowned secrets count as unmanaged."""
    configured = stack.config.drift.scope
    if configured is not None:
        return list(configured)
    return sorted({d.decl.name.split("/", 1)[0] + "/" for d in stack.secrets if "/" in d.decl.name})


def _unmanaged(stack: Stack, actual: Mapping[str, Mapping[str, RemoteSecret]], declared: set[tuple[str, str]],
               ) -> list[Drift]:
    found = []
    scopes = name_scopes(stack)
    for target, secrets in sorted(actual.items()):
        provider = stack.config.targets[target].provider
        prefixes = tuple(translate(scope, provider) for scope in scopes)
        for name, secret in sorted(secrets.items()):
            if secret.owner == stack.name or secret.deleted or is_reserved(name):
                continue
            if not (name.startswith(prefixes) or (target, name) in declared):
                continue
            who = f"managed by stack {secret.owner!r}" if secret.managed and secret.owner else "not managed by cloudsync"
            found.append(Drift(f"{target}:{name}", target, name, DriftKind.UNMANAGED,
                               f"{who}, inside the stack's name scope"))
    return found


def _protected_orphans(stack: Stack, actual: Mapping[str, Mapping[str, RemoteSecret]],
                       declared: set[tuple[str, str]]) -> list[Drift]:
    """Owned, undeclared secrets the planner keeps because of deletion protection."""
    return [Drift(f"{target}:{name}", target, name, DriftKind.ORPHAN,
                  "owned by the stack but no longer declared (kept: deletion protection is on)")
            for target, secrets in sorted(actual.items()) for name, s in sorted(secrets.items())
            if s.owner == stack.name and s.protected and not s.deleted and (target, name) not in declared
            and not is_reserved(name)]


def load_ignores(stack: Stack) -> tuple[list[tuple[DriftIgnore, str]], list[Diagnostic]]:
    """Ignore entries from ``drift.ignore`` and ``.cloudsyncignore``, with where each was written."""
    entries = [(entry, f"{stack.smap.file}") for entry in stack.config.drift.ignore]
    path = stack.root / IGNORE_FILE
    diags = Diagnostics()
    if path.is_file():
        data, smap = _read_yaml(path, diags)
        if data is not None:
            parsed = _validate(IgnoreFile, data if isinstance(data, dict) else {"ignore": data}, smap, (), diags)
            if parsed is not None:
                entries += [(entry, str(path)) for entry in parsed.ignore]
    if diags.has_errors:
        raise CloudsyncError(diags.items)
    return entries, list(diags)


def classify(stack: Stack, plan: Plan, actual: Mapping[str, Mapping[str, RemoteSecret]],
             declared: Iterable[tuple[str, str]], *, today: date, inherited: Sequence[Drift] = ()) -> DriftReport:
    """Turn a metadata-only plan and the actual state into a drift report.

    ``inherited`` are the undeclared readers through broader scopes the access scans found
    (see :func:`cloudsync.access.collect.inherited_drift`); they are ignorable like any drift.
    """
    drifted: list[Drift] = list(inherited)
    deletes = deletes_by_cloudsync(audit_path(stack.root))
    for change in plan.real_changes:
        drifted += _from_change(change, deletes)
    declared_set = set(declared)
    planned = {c.address for c in plan.changes}
    drifted += [d for d in _unmanaged(stack, actual, declared_set) if d.address not in planned]
    drifted += _protected_orphans(stack, actual, declared_set)
    entries, diags = load_ignores(stack)
    kept, ignored = [], []
    used: set[int] = set()
    for drift in drifted:
        match = _matching(entries, drift, today)
        if match is None:
            kept.append(drift)
        else:
            ignored.append(drift)
            used.add(match)
    for i, (entry, where) in enumerate(entries):
        if entry.expires < today:
            diags.append(Diagnostic(
                f"drift ignore entry for {entry.address!r} expired on {entry.expires.isoformat()} and no longer applies",
                severity=Severity.WARNING, file=where, hint="remove it, or renew it with a new reason and date"))
        elif i not in used:
            diags.append(Diagnostic(f"drift ignore entry for {entry.address!r} matched nothing",
                                    severity=Severity.WARNING, file=where, hint="remove it if the drift is gone"))
    kept.sort(key=lambda d: (d.target, d.secret, KIND_ORDER.index(d.kind)))
    warnings = [d for d in plan.diagnostics if d.severity is Severity.WARNING]
    return DriftReport(stack=stack.name, targets=plan.targets, drifted=kept, ignored=ignored,
                       checked=len(plan.changes), diagnostics=[*warnings, *diags])


def _matching(entries: Sequence[tuple[DriftIgnore, str]], drift: Drift, today: date) -> int | None:
    for i, (entry, _) in enumerate(entries):
        if entry.expires >= today and drift.kind.value in entry.kinds and fnmatch.fnmatchcase(drift.address, entry.address):
            return i
    return None


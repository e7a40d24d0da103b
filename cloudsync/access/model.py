"""The who-can-read-what report: its model, and the pure function that builds it.

The report joins three things per secret: the readers the stack declares, the effective
readers a target's access scan found (per-secret grants and broader ones), and the facts
the cloud keeps about use and age. It never holds a value. Where a scan could not see every
source, a secret's readers are *unknown* (``readers_complete: false``), never "none".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudsync.access.versions import LiveVersion
from cloudsync.diagnostics import Diagnostic
from cloudsync.providers.access import EffectiveReader, Via
from cloudsync.providers.registry import rules_for

if TYPE_CHECKING:
    from cloudsync.config.models import StackFile

FORMAT_VERSION = 1
DEFAULT_UNUSED_AFTER = timedelta(days=90)


@dataclass(frozen=True)
class SecretFacts:
    """What the collector learnt about one secret in one target (the builder's input)."""

    target: str
    provider: str
    remote_name: str
    secret: str  # the logical name when declared, else the remote name
    managed: bool  # declared and owned by this stack
    declared_readers: tuple[str, ...] = ()
    readers: tuple[EffectiveReader, ...] = ()
    complete: bool = True
    incomplete_reasons: tuple[str, ...] = ()
    tracks_last_access: bool = False  # the cloud records when the secret was last read (AWS)
    last_accessed: date | None = None
    current_version_at: datetime | None = None
    rotation: timedelta | None = None
    expires_at: datetime | None = None
    file: str | None = None
    line: int | None = None
    old_versions: tuple[LiveVersion, ...] | None = None  # None: versions not listed (see access/versions.py)
    grace: timedelta | None = None  # how long a superseded version may stay live; None: never retired

    @property
    def address(self) -> str:
        return f"{self.target}:{self.secret}"

    @property
    def past_grace(self) -> tuple[LiveVersion, ...]:
        return tuple(v for v in self.old_versions or () if v.past_grace(self.grace))


@dataclass(frozen=True)
class Reader:
    """One effective reader of one secret, named after the stack's principal when one matches."""

    principal: str
    name: str | None
    declared: bool
    via: Via
    scope: str
    grant: str
    conditional: bool

    def as_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "name": self.name, "declared": self.declared, "via": self.via.value,
                "scope": self.scope, "grant": self.grant, "conditional": self.conditional}


@dataclass(frozen=True)
class SecretAccess:
    facts: SecretFacts
    readers: tuple[Reader, ...]
    version_age_days: int | None
    rotation_due: date | None
    rotation_overdue: bool

    @property
    def address(self) -> str:
        return self.facts.address

    @property
    def undeclared(self) -> tuple[Reader, ...]:
        return tuple(r for r in self.readers if not r.declared)

    def as_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "address": f.address, "target": f.target, "provider": f.provider, "secret": f.secret,
            "remote_name": f.remote_name, "managed": f.managed, "declared_readers": list(f.declared_readers),
            "readers": [r.as_dict() for r in self.readers], "readers_complete": f.complete,
            "incomplete_reasons": list(f.incomplete_reasons),
            "last_accessed": f.last_accessed.isoformat() if f.last_accessed else None,
            "version_age_days": self.version_age_days,
            "rotation_due": self.rotation_due.isoformat() if self.rotation_due else None,
            "rotation_overdue": self.rotation_overdue,
            "expires_at": f.expires_at.isoformat() if f.expires_at else None,
            "old_versions": [v.as_dict(f.grace) for v in f.old_versions] if f.old_versions is not None else None,
            "file": f.file, "line": f.line,
        }


@dataclass(frozen=True)
class Grant:
    """What one principal can read, and through which grant."""

    address: str
    via: Via
    scope: str
    grant: str
    conditional: bool
    declared: bool

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "via": self.via.value, "scope": self.scope, "grant": self.grant,
                "conditional": self.conditional, "declared": self.declared}


@dataclass(frozen=True)
class PrincipalAccess:
    principal: str
    name: str | None
    grants: tuple[Grant, ...]

    @property
    def can_read(self) -> list[str]:
        return sorted({g.address for g in self.grants})

    def as_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "name": self.name, "can_read": self.can_read,
                "grants": [g.as_dict() for g in self.grants]}


@dataclass(frozen=True)
class UnusedGrant:
    """A declared reader of a secret the cloud says was not read for a long time (or never)."""

    address: str
    reader: str
    last_accessed: date | None

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "reader": self.reader,
                "last_accessed": self.last_accessed.isoformat() if self.last_accessed else None}


@dataclass
class AccessReport:
    stack: str
    targets: list[str]
    generated_on: date
    secrets: list[SecretAccess]
    principals: list[PrincipalAccess]
    unused: list[UnusedGrant]
    principal_filter: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "secrets": len(self.secrets),
            "with_undeclared_readers": sum(1 for s in self.secrets if s.undeclared),
            "readers_incomplete": sum(1 for s in self.secrets if not s.facts.complete),
            "principals": len(self.principals),
            "unused_grants": len(self.unused),
            "rotation_overdue": sum(1 for s in self.secrets if s.rotation_overdue),
            "old_versions_past_grace": sum(len(s.facts.past_grace) for s in self.secrets),
        }

    def as_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "stack": self.stack, "targets": self.targets,
                "generated_on": self.generated_on.isoformat(), "principal_filter": self.principal_filter,
                "secrets": [s.as_dict() for s in self.secrets],
                "principals": [p.as_dict() for p in self.principals],
                "unused_grants": [u.as_dict() for u in self.unused],
                "summary": self.summary(), "diagnostics": [d.as_dict() for d in self.diagnostics]}


def principal_names(config: StackFile, targets: Iterable[str]) -> dict[str, dict[str, str]]:
    """target -> cloud principal id -> declared principal name."""
    found: dict[str, dict[str, str]] = {}
    for target in targets:
        rules = rules_for(config.targets[target].provider)
        ids: dict[str, str] = {}
        for name, principal in config.principals.items():
            cloud_id = rules.principal_id(principal, name)
            if cloud_id is not None:
                ids.setdefault(cloud_id, name)
        found[target] = ids
    return found


def reader_documents(readers: Iterable[EffectiveReader], names: Mapping[str, str],
                     declared: Iterable[str]) -> list[dict[str, Any]]:
    """Effective readers as the policy input document shows them (named, declared or not)."""
    return [r.as_dict() for r in _resolve(readers, names, declared)]


def _resolve(readers: Iterable[EffectiveReader], names: Mapping[str, str],
             declared_names: Iterable[str]) -> tuple[Reader, ...]:
    """Name each reader after the stack's principal with that id; one row per grant."""
    declared = set(declared_names)
    seen: set[tuple[str, str, str, str]] = set()
    rows = []
    for found in readers:
        key = (found.principal, found.via.value, found.scope, found.grant)
        if key in seen:
            continue
        seen.add(key)
        name = names.get(found.principal)
        rows.append(Reader(principal=found.principal, name=name, declared=name is not None and name in declared,
                           via=found.via, scope=found.scope, grant=found.grant, conditional=found.conditional))
    rows.sort(key=lambda r: (r.declared, list(Via).index(r.via), r.principal, r.grant))
    return tuple(rows)


def _age(facts: SecretFacts, today: date) -> tuple[int | None, date | None, bool]:
    if facts.current_version_at is None:
        return None, None, False
    made = facts.current_version_at.date()
    due = made + facts.rotation if facts.rotation else None
    return (today - made).days, due, due is not None and due < today


def _matches(principal: str, name: str | None, wanted: str) -> bool:
    return wanted in (principal, name) or principal.split(":", 1)[-1] == wanted


def build_report(stack: str, targets: Iterable[str], facts: Iterable[SecretFacts],
                 names: Mapping[str, Mapping[str, str]], *, today: date,
                 unused_after: timedelta = DEFAULT_UNUSED_AFTER, principal: str | None = None) -> AccessReport:
    """Join declarations, scans and usage facts into the report.

    ``names`` maps target -> cloud principal id -> declared principal name. With
    ``principal`` (a name or a cloud id), the report keeps only what that principal can read:
    the blast radius of one leaked credential.
    """
    secrets: list[SecretAccess] = []
    grants: dict[str, list[Grant]] = {}
    named: dict[str, str | None] = {}
    unused: list[UnusedGrant] = []
    for item in facts:
        readers = _resolve(item.readers, names.get(item.target, {}), item.declared_readers)
        if principal is not None:
            readers = tuple(r for r in readers if _matches(r.principal, r.name, principal))
            if not readers:
                continue
        age, due, overdue = _age(item, today)
        entry = SecretAccess(item, readers, age, due, overdue)
        secrets.append(entry)
        for reader in readers:
            named.setdefault(reader.principal, reader.name)
            grants.setdefault(reader.principal, []).append(Grant(
                entry.address, reader.via, reader.scope, reader.grant, reader.conditional, reader.declared))
        if item.tracks_last_access and item.declared_readers:
            since = today - unused_after
            # Never read counts once the value is older than the threshold: a new secret is not unused yet.
            stale = (item.last_accessed < since if item.last_accessed is not None
                     else age is not None and age > unused_after.days)
            if stale:
                unused += [UnusedGrant(entry.address, reader, item.last_accessed) for reader in item.declared_readers]
    secrets.sort(key=lambda s: (s.facts.target, s.facts.secret))
    principals = [PrincipalAccess(p, named[p], tuple(sorted(g, key=lambda x: (x.address, x.via.value))))
                  for p, g in sorted(grants.items(), key=lambda kv: (-len({g.address for g in kv[1]}), kv[0]))]
    return AccessReport(stack=stack, targets=list(targets), generated_on=today, secrets=secrets,
                        principals=principals, unused=unused, principal_filter=principal)

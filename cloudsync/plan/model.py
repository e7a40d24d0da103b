"""The in-memory plan: a closed set of actions, changes with reasons, and a summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from cloudsync.diagnostics import Diagnostic, Severity
from cloudsync.plan.actions import REASON_ORDER, Action, Reason
from cloudsync.providers.base import RemoteSecret, SecretState

__all__ = ["REASON_ORDER", "Action", "Change", "Plan", "Reason", "ValueMode", "ValuePlan"]


class Phase(IntEnum):
    """When a change runs. Every change of a phase completes before the next phase starts.

    Deletes come last: a rename (delete the old name, create the new one) or a replacement
    never leaves a moment with neither secret, whatever the parallelism (Terraform records
    the same decision as ``CreateThenDelete`` in the change itself).
    """

    WRITE = 1  # create, update, restore
    DELETE = 2  # only once every write of the plan has completed


class ValueMode(StrEnum):
    """How apply obtains the value it writes."""

    SOURCE = "source"  # resolve the declaration's source (env, sops, file, from)
    GENERATE = "generate"  # generate a new random value (once per secret per apply)
    COPY = "copy"  # copy the current value from a sibling target of the same secret
    DERIVED = "derived"  # from / public_key_of a secret whose value this same apply writes
    UNKNOWN = "unknown"  # metadata-only plan: the value could not be compared


@dataclass(frozen=True)
class ValuePlan:
    mode: ValueMode
    fingerprint: str | None = None  # desired fingerprint (SOURCE), under the target's key
    key_id: str | None = None
    spec: str | None = None  # generate spec digest
    copy_from: str | None = None  # target name for COPY
    regenerate: bool = False  # GENERATE because the value itself must change (rotation, settings)
    # `--grace`: how long the value this write replaces stays usable; None: the declared default.
    # Carried for the retirement of old versions; the planner itself does not act on it.
    grace: timedelta | None = None


@dataclass(frozen=True)
class Change:
    """One address: what is, what should be, and why they differ."""

    address: str
    target: str
    provider: str
    secret: str
    remote_name: str
    action: Action
    reasons: tuple[Reason, ...] = ()
    before: RemoteSecret | None = None
    after: SecretState | None = None
    value: ValuePlan | None = None  # set when the change writes a value
    details: tuple[str, ...] = ()  # display-only lines, never a value
    follows: tuple[str, ...] = ()  # secrets whose writes in this plan must apply before this one starts
    file: str | None = None
    line: int | None = None

    @property
    def writes_value(self) -> bool:
        return self.value is not None and self.value.mode is not ValueMode.UNKNOWN

    @property
    def phase(self) -> Phase:
        return Phase.DELETE if self.action is Action.DELETE else Phase.WRITE


@dataclass
class Plan:
    stack: str
    changes: list[Change]
    created_at: datetime
    metadata_only: bool = False
    targets: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    unchanged: int | None = None  # a saved plan keeps only real changes, and this count of the rest

    @property
    def real_changes(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    def phases(self) -> list[tuple[Phase, list[Change]]]:
        """The real changes grouped by phase, in the order apply runs them.

        Writes that follow others (``Change.follows``: a copy of a replaced value, a certificate
        of a new CA) run in later groups of the write phase, after what they follow.
        """
        changes = self.real_changes
        groups: list[tuple[Phase, list[Change]]] = []
        for phase in Phase:
            group = [c for c in changes if c.phase is phase]
            waves = _waves(group) if phase is Phase.WRITE else [group]
            groups += [(phase, wave) for wave in waves if wave]
        return groups

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)

    def summary(self) -> dict[str, int]:
        counts = Counter(c.action for c in self.changes)
        return {
            "create": counts[Action.CREATE],
            "update": counts[Action.UPDATE],
            "delete": counts[Action.DELETE],
            "restore": counts[Action.RESTORE],
            "unchanged": counts[Action.NOOP] if self.unchanged is None else self.unchanged,
        }


def _waves(changes: list[Change]) -> list[list[Change]]:
    """``changes`` in dependency order: each group after every group it follows (a cycle, refused at load time, is cut)."""
    writers: dict[str, list[Change]] = {}
    for change in changes:
        writers.setdefault(change.secret, []).append(change)
    depth: dict[str, int] = {}

    def level(secret: str, seen: frozenset[str]) -> int:
        if secret not in depth:
            follows = {f for c in writers.get(secret, ()) for f in c.follows if f in writers and f not in seen}
            depth[secret] = 1 + max((level(f, seen | {secret}) for f in follows), default=-1)
        return depth[secret]

    waves: list[list[Change]] = []
    for change in changes:
        at = level(change.secret, frozenset())
        waves += [[] for _ in range(at + 1 - len(waves))]
        waves[at].append(change)
    return waves

"""Waivers: time-limited, justified exceptions. Expired waivers stop waiving and say so."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import date

from cloudsync.diagnostics import Diagnostic, Severity
from cloudsync.policy.model import Violation, Waiver


def _describe(waiver: Waiver) -> str:
    secrets = ", ".join(waiver.secrets)
    targets = "" if waiver.targets == ("*",) else f" in {', '.join(waiver.targets)}"
    return f"waiver of {waiver.policy} for {secrets}{targets}"


def apply_waivers(violations: Iterable[Violation], waivers: Sequence[Waiver], today: date,
                  evaluated: Collection[tuple[str, str]], declared: Collection[str],
                  enabled: Collection[str]) -> tuple[list[Violation], list[Violation], list[Diagnostic]]:
    """Split ``violations`` into (kept, waived) and report expired and unused waivers.

    ``evaluated`` holds the (secret, target) pairs that were evaluated and ``declared`` every
    declared secret name: a waiver counts as unused only when it could have applied here
    (it names an evaluated address, or no declared secret at all), so planning one target
    does not call the waivers of the others unused.
    """
    kept: list[Violation] = []
    waived: list[Violation] = []
    hits: Counter[int] = Counter()
    expired_hits: Counter[int] = Counter()
    for violation in violations:
        covering = [(i, w) for i, w in enumerate(waivers)
                    if w.covers(violation.policy, violation.secret, violation.target)]
        active = next(((i, w) for i, w in covering if w.active(today)), None)
        if active is not None:
            hits[active[0]] += 1
            waived.append(_with_waiver(violation, active[1]))
            continue
        for i, _ in covering:
            expired_hits[i] += 1
        kept.append(violation)

    diags: list[Diagnostic] = []
    for i, waiver in enumerate(waivers):
        file, line = waiver.file or None, waiver.line or None
        if not waiver.active(today):
            diags.append(_expired(waiver, expired_hits[i]))
        elif hits[i] == 0 and _could_apply(waiver, evaluated, declared):
            why = "" if waiver.policy in enabled else f" ({waiver.policy} is disabled for this stack)"
            diags.append(Diagnostic(f"{_describe(waiver)} waived nothing{why}", Severity.WARNING, file, line,
                                    hint="remove the waiver if its exception is gone"))
    return kept, waived, diags


def _expired(waiver: Waiver, count: int) -> Diagnostic:
    now_counting = f"; {count} violation{'s' if count != 1 else ''} it covered now count" if count else ""
    return Diagnostic(f"{_describe(waiver)} expired on {waiver.expires.isoformat()} and no longer waives{now_counting}",
                      Severity.WARNING, waiver.file or None, waiver.line or None,
                      hint="fix the secrets, or renew the waiver with a new reason and expiry")


def expired_warnings(waivers: Iterable[Waiver], today: date) -> list[Diagnostic]:
    """A warning for each waiver past its expiry (what validate can tell without evaluating)."""
    return [_expired(w, 0) for w in waivers if not w.active(today)]


def _could_apply(waiver: Waiver, evaluated: Collection[tuple[str, str]], declared: Collection[str]) -> bool:
    names_any = any(fnmatch.fnmatchcase(name, glob) for name in declared for glob in waiver.secrets)
    if not names_any:
        return True  # it names nothing that exists: certainly unused
    return any(waiver.covers(waiver.policy, secret, target) for secret, target in evaluated)


def _with_waiver(violation: Violation, waiver: Waiver) -> Violation:
    from dataclasses import replace

    return replace(violation, waiver=waiver)

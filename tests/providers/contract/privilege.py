"""Least privilege, checked: each operation with exactly the permissions it is said to need.

``cloudsync permissions --target T`` prints, per operation, the permissions cloudsync's own
identity needs. A cloud's least-privilege test grants exactly those (through its fake, or
moto's IAM enforcement), runs what the operation serves, and expects success; then it takes
each permission away in turn, on a fresh copy of the same state, and expects a failure whose
message names the permission taken away. A printed permission whose removal breaks nothing
is over-privilege (or a scenario that misses a code path): the test fails either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloudsync.diagnostics import CloudsyncError, Severity
from tests.providers.contract.drive import Driver

# Operation (as `cloudsync permissions` names it) -> what it serves.
SERVES = {
    "plan-metadata": ("plan --metadata-only", "drift"),
    "plan": ("plan",),
    "apply": ("apply",),
}
# What these serve writes nothing: one starting state serves every run.
READ_ONLY = frozenset({"plan-metadata", "plan"})


@dataclass(frozen=True)
class Run:
    ok: bool
    said: str  # every message and hint the user would read
    unknown: str = ""  # why readers are unknown: a missing access-scan permission degrades, never fails
    notes: str = ""  # how the targets were read: a missing bulk-read permission falls back, and says so


def _notes(outcome: Any) -> str:
    return "\n".join(note for scan in outcome.run.access.values() for note in scan.notes)


def run(driver: Driver, command: str) -> Run:
    """Run one command as the CLI would; collect what it says."""
    try:
        if command == "plan --metadata-only":
            outcome = driver.plan(metadata_only=True)
        elif command == "drift":
            report = driver.drift()
            errors = [d for d in report.diagnostics if d.severity is Severity.ERROR]
            return Run(not errors, "\n".join(d.render() for d in report.diagnostics),
                       "\n".join(driver.last_drift.unknown_readers), _notes(driver.last_drift))
        elif command == "access --versions":
            report = driver.access_versions()
            failed = [d.render() for d in report.diagnostics
                      if d.severity is Severity.ERROR or "listing the versions" in d.message]
            return Run(not failed, "\n".join(failed))
        elif command == "plan":
            outcome = driver.plan()
        else:
            outcome = driver.apply()
    except CloudsyncError as exc:
        return Run(False, "\n".join(f"{d.message} (hint: {d.hint})" for d in exc.diagnostics))
    ok = not outcome.errors and (outcome.report is None or outcome.report.ok)
    return Run(ok, "\n".join(outcome.errors), "\n".join(outcome.unknown_readers), _notes(outcome))


@dataclass
class Scenario:
    """A state to start from and the permissions to hold, for one cloud."""

    prepare: Callable[[str], Driver]  # (operation) -> the driver, on a fresh target in the starting state
    grant: Callable[[Iterable[str]], None]  # hold exactly these permissions from now on
    mentions: Callable[[str], Iterable[str]] = lambda permission: (permission,)  # how errors may name one
    # Permissions of the access scan: without one the run still succeeds, and says which
    # readers are unknown and why (naming it), instead of failing.
    scan: frozenset[str] = frozenset()
    # Permissions of a bulk read with a slower complete fallback (GCP's asset index): without one
    # the run succeeds just the same, and a note names it.
    fallback: frozenset[str] = frozenset()
    # Permissions that serve only other commands than SERVES names (e.g. ListSecretVersionIds serves
    # "access --versions"): run those with every permission, and without it only those.
    serves_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def check_operation(scenario: Scenario, printed: Mapping[str, set[str]], operation: str) -> None:
    """Exactly the printed permissions suffice; each one taken away fails, naming it."""
    needed = printed[operation]
    assert needed, f"no permissions printed for {operation}"
    driver = scenario.prepare(operation)
    scenario.grant(needed)
    extra = tuple(dict.fromkeys(c for p, cs in scenario.serves_only.items() if p in needed for c in cs))
    for command in (*SERVES[operation], *extra):
        result = run(driver, command)
        assert result.ok, f"{command} with exactly the printed {operation} permissions failed:\n{result.said}"
    unexplained = []
    for missing in sorted(needed):
        if operation not in READ_ONLY:
            driver = scenario.prepare(operation)
        scenario.grant(needed - {missing})
        commands = scenario.serves_only.get(missing, SERVES[operation])
        results = {command: run(driver, command) for command in commands}
        for command, result in results.items():
            if missing in scenario.fallback:
                if not result.ok or not any(name in result.notes for name in scenario.mentions(missing)):
                    unexplained.append(f"{command} without {missing}: " + (
                        "did not say it fell back" if result.ok else f"failed:\n{result.said}"))
                continue
            if missing in scenario.scan:
                if not result.ok or not any(name in result.unknown for name in scenario.mentions(missing)):
                    unexplained.append(f"{command} without {missing}: " + (
                        "did not say which readers are unknown" if result.ok else f"failed:\n{result.said}"))
                continue
            if result.ok or not any(name in result.said for name in scenario.mentions(missing)):
                unexplained.append(f"{command} without {missing}: "
                                   + ("succeeded" if result.ok else f"failed without naming it:\n{result.said}"))
    assert not unexplained, "\n".join(unexplained)

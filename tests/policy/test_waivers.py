"""Waivers: active ones waive, expired ones stop waiving and say so, unused ones are reported."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from cloudsync.config.loader import Stack
from cloudsync.diagnostics import Severity
from cloudsync.policy import PolicyReport, evaluate

from .helpers import pairs, stack_with

SECRETS = """\
- {name: legacy/a, targets: [local], rotation: 400d}
- {name: legacy/b, targets: [local, gcp-dev], rotation: 400d}
- {name: vendor/c, targets: [local], rotation: 400d}
"""

WAIVERS = """\
waivers:
  - policy: CS006
    secrets: ["legacy/*"]
    targets: [local]
    reason: vendor rotates these itself, SEC-42
    expires: 2026-12-31
  - policy: CS006
    secrets: [vendor/c]
    reason: migration, SEC-7
    expires: 2026-01-31
  - policy: CS001
    secrets: ["legacy/*"]
    reason: nothing to waive
    expires: 2026-12-31
  - policy: CS006
    secrets: ["gone/*"]
    reason: the secrets were deleted
    expires: 2026-12-31
"""


def _report(tmp_path: Path, today: date) -> tuple[Stack, PolicyReport]:
    stack = stack_with(tmp_path, SECRETS, extra={"policies/waivers.yaml": WAIVERS})
    report = evaluate(stack, today=today)
    report.violations = [v for v in report.violations if v.policy == "CS006"]
    return stack, report


def test_active_expired_and_unused_waivers(tmp_path: Path) -> None:
    _, report = _report(tmp_path, date(2026, 6, 1))
    assert pairs(report, waived=True) == {("CS006", "local:legacy/a"), ("CS006", "local:legacy/b")}
    # The target glob keeps gcp-dev unwaived; the expired waiver no longer waives vendor/c.
    assert pairs(report) == {("CS006", "gcp-dev:legacy/b"), ("CS006", "local:vendor/c")}
    assert report.blocking
    waived = report.waived[0]
    assert waived.waiver is not None and waived.waiver.reason == "vendor rotates these itself, SEC-42"
    assert waived.as_dict()["waiver"] == {"reason": "vendor rotates these itself, SEC-42", "expires": "2026-12-31",
                                          "file": str(tmp_path / "policies" / "waivers.yaml"), "line": 2}
    messages = [(d.severity, d.line, d.message) for d in report.diagnostics]
    assert messages == [
        (Severity.WARNING, 7, "waiver of CS006 for vendor/c expired on 2026-01-31 and no longer waives; "
                              "1 violation it covered now count"),
        (Severity.WARNING, 11, "waiver of CS001 for legacy/* waived nothing"),
        (Severity.WARNING, 15, "waiver of CS006 for gone/* waived nothing"),
    ]


def test_a_waiver_waives_through_its_expiry_day_and_not_after(tmp_path: Path) -> None:
    _, on_the_day = _report(tmp_path / "a", date(2026, 1, 31))
    _, day_after = _report(tmp_path / "b", date(2026, 2, 1))
    assert ("CS006", "local:vendor/c") in pairs(on_the_day, waived=True)
    assert ("CS006", "local:vendor/c") in pairs(day_after)


def test_waiver_of_a_disabled_policy_says_so(tmp_path: Path) -> None:
    head = ("version: 1\nstack: demo\ntargets: {local: {provider: local}}\n"
            "defaults: {labels: {owner: o}, rotation: 30d}\npolicy: {disabled: [CS009]}\n")
    stack = stack_with(tmp_path, "- {name: Bad_Name, targets: [local]}\n", head=head, extra={
        "policies/w.yaml": "waivers:\n  - {policy: CS009, secrets: [Bad_Name], reason: r, expires: 2030-01-01}\n"})
    report = evaluate(stack, today=date(2026, 6, 1))
    assert [d.message for d in report.diagnostics] == [
        "waiver of CS009 for Bad_Name waived nothing (CS009 is disabled for this stack)"]

"""Text and JSON renderings of a :class:`PolicyReport` and of a policy test run."""

from __future__ import annotations

import json
from typing import Any

from cloudsync.policy.model import PolicyReport, Violation
from cloudsync.policy.testing import PolicyTestRun

FORMAT_VERSION = 1


def report_to_dict(report: PolicyReport) -> dict[str, Any]:
    """``{"format_version": 1, "violations": [...], "waived": [...], "diagnostics": [...]}``."""
    return {
        "format_version": FORMAT_VERSION,
        "violations": [v.as_dict() for v in report.violations],
        "waived": [v.as_dict() for v in report.waived],
        "diagnostics": [d.as_dict() for d in report.diagnostics],
    }


def render_json(report: PolicyReport) -> str:
    return json.dumps(report_to_dict(report), indent=2)


def _where(v: Violation) -> str:
    if not v.file:
        return ""
    return f"{v.file}:{v.line}: " if v.line else f"{v.file}: "


def render_text(report: PolicyReport) -> str:
    """One line per violation at its declaration, then waived ones, then a summary line."""
    lines = [f"{_where(v)}{v.severity} {v.policy} ({v.title}): {v.message}" for v in report.violations]
    for v in report.waived:
        assert v.waiver is not None
        lines.append(f"{_where(v)}waived {v.policy} at {v.address} until {v.waiver.expires.isoformat()}: "
                     f"{v.waiver.reason}")
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = "FAILED" if report.blocking else "passed"
    lines.append(f"Policy check {verdict}: {errors} error{'s' * (errors != 1)}, "
                 f"{warnings} warning{'s' * (warnings != 1)}, {len(report.waived)} waived "
                 f"({len(report.policies)} policies over {report.evaluated} addresses).")
    return "\n".join(lines)


def render_test_text(run: PolicyTestRun, *, verbose: bool = False) -> str:
    """Failures with what was missing and unexpected (like ``opa test``), then the counts."""
    lines: list[str] = []
    for r in run.results:
        if r.passed:
            if verbose:
                lines.append(f"PASS {r.file}:{r.line}: {r.name}")
            continue
        lines.append(f"FAIL {r.file}:{r.line}: {r.name}")
        lines += [f"  missing violation    {p} {a}" for p, a in r.missing]
        lines += [f"  unexpected violation {p} {a}" for p, a in r.unexpected]
        lines += [f"  missing waived       {p} {a}" for p, a in r.waived_missing]
        lines += [f"  unexpected waived    {p} {a}" for p, a in r.waived_unexpected]
        if r.error:
            lines += [f"  {line}" for line in r.error.splitlines()]
    total = len(run.results)
    lines.append(f"PASS: {run.passed}/{total}" + (f"  FAIL: {run.failed}/{total}" if run.failed else ""))
    return "\n".join(lines)

"""Text and JSON renderings of a :class:`PolicyReport` and of a policy test run.

Titles, messages and reasons come from policy files a pull request can add: the text
renderings show them through ``safe_text`` (bounded, no control characters). JSON keeps
them as they are; its encoder escapes control characters.
"""

from __future__ import annotations

import json
from typing import Any

from cloudsync.policy.model import PolicyReport
from cloudsync.policy.testing import PolicyTestRun
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text

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


def _where(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    shown = safe_text(file, NAME_LIMIT)
    return f"{shown}:{line}: " if line else f"{shown}: "


def render_text(report: PolicyReport) -> str:
    """One line per violation at its declaration, then waived ones, then a summary line."""
    lines = [f"{_where(v.file, v.line)}{v.severity} {v.policy} ({safe_text(v.title, 200)}): "
             f"{safe_text(v.message, TEXT_LIMIT)}" for v in report.violations]
    for v in report.waived:
        assert v.waiver is not None
        lines.append(f"{_where(v.file, v.line)}waived {v.policy} at {safe_text(v.address, NAME_LIMIT)} until "
                     f"{v.waiver.expires.isoformat()}: {safe_text(v.waiver.reason, TEXT_LIMIT)}")
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
        where = f"{_where(r.file, r.line)}{safe_text(r.name, 200)}"
        if r.passed:
            if verbose:
                lines.append(f"PASS {where}")
            continue
        lines.append(f"FAIL {where}")
        for label, pairs in (("missing violation   ", r.missing), ("unexpected violation", r.unexpected),
                             ("missing waived      ", r.waived_missing), ("unexpected waived   ", r.waived_unexpected)):
            lines += [f"  {label} {safe_text(p, 100)} {safe_text(a, NAME_LIMIT)}" for p, a in pairs]
        if r.error:
            lines += [f"  {safe_text(line, 2 * TEXT_LIMIT)}" for line in r.error.split("\n")[:50]]
    total = len(run.results)
    lines.append(f"PASS: {run.passed}/{total}" + (f"  FAIL: {run.failed}/{total}" if run.failed else ""))
    return "\n".join(lines)

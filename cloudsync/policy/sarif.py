"""SARIF 2.1.0 for GitHub code scanning: one rule per enabled policy, one result per violation.

Results sit at the secret's declaration (relative URI, ``startLine``) so code scanning
annotates the line in the pull request. Waived violations are left out: code scanning
does not honour SARIF ``suppressions`` and would open alerts for them. Every enabled
policy is listed as a rule even when it found nothing, so fixed alerts close.

Titles, rationales and messages may come from a pull request's own policy files, and
code scanning shows them in its UI: text goes through ``safe_text`` (bounded, no
control characters) and the markdown help through :func:`cloudsync.markdown.escape`, the one
escaping function of every markdown report (a ``*`` in a regex stays a ``*``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from cloudsync import __version__
from cloudsync.markdown import escape
from cloudsync.policy.model import Policy, PolicyReport, Violation
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# GitHub accepts at most 25,000 results per run; beyond it the upload is rejected.
MAX_RESULTS = 25_000
SECURITY_SEVERITY = {"error": "8.0", "warning": "5.0"}


def _rule(policy: Policy) -> dict[str, Any]:
    title = safe_text(policy.title, 200)
    # Prose: its lines joined, as markdown would, so no line of it stands on its own.
    rationale, fix = safe_text(" ".join(policy.rationale.split("\n")), 4000), safe_text(" ".join(policy.fix.split("\n")), 2000)
    help_text = f"{rationale}\n\nFix: {fix}".strip() if fix else rationale
    prose = (" ".join(policy.rationale.split("\n")), " ".join(policy.fix.split("\n")))
    return {
        "id": policy.id,
        "name": "".join(w[:1].upper() + w[1:] for w in re.sub(r"[^A-Za-z0-9]+", " ", policy.title).split())[:200],
        "shortDescription": {"text": title},
        "fullDescription": {"text": rationale or title},
        "help": {"text": help_text or title,
                 "markdown": f"**{escape(policy.title, 200)}**\n\n{escape(prose[0], 4000)}\n\n"
                             f"**Fix:** {escape(prose[1], 2000)}".strip()},
        "defaultConfiguration": {"level": policy.severity},
        "properties": {"tags": ["security", "secrets", "cloudsync"], "precision": "very-high",
                       "security-severity": SECURITY_SEVERITY[policy.severity]},
    }


def _artifact(file: str) -> dict[str, str]:
    """A repository-relative URI (what code scanning maps to files); absolute paths as file:// URIs."""
    path = file.replace("\\", "/")
    if PurePosixPath(path).is_absolute():
        try:
            path = Path(file).resolve().relative_to(Path.cwd().resolve()).as_posix()
        except (ValueError, OSError):
            return {"uri": PurePosixPath(path).as_uri()}
    # Percent-encoded: a URI carries no raw control characters or spaces.
    return {"uri": quote(PurePosixPath(path).as_posix().removeprefix("./"), safe="/"), "uriBaseId": "%SRCROOT%"}


def _result(v: Violation, index: int) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": v.line or 1}
    digest = hashlib.sha256(f"{v.policy}\0{v.address}".encode()).hexdigest()[:32]
    return {
        "ruleId": v.policy,
        "ruleIndex": index,
        "level": v.severity,
        "message": {"text": safe_text(f"{v.message} [{v.address}]" if v.address not in v.message else v.message,
                                      TEXT_LIMIT + NAME_LIMIT)},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact(v.file or "cloudsync.yaml"),
                                            "region": region}}],
        # The address is the stable identity of a finding, whatever line it moves to.
        "partialFingerprints": {"cloudsyncAddress/v1": digest},
        "properties": {"address": safe_text(v.address, NAME_LIMIT), "secret": safe_text(v.secret, NAME_LIMIT),
                       "target": safe_text(v.target, NAME_LIMIT)},
    }


def report_to_sarif(report: PolicyReport) -> dict[str, Any]:
    rules = [_rule(p) for p in report.policies]
    index = {p.id: i for i, p in enumerate(report.policies)}
    results = [_result(v, index[v.policy]) for v in report.violations[:MAX_RESULTS] if v.policy in index]
    notifications = [{"level": "warning" if d.severity.value == "warning" else "error",
                      "message": {"text": safe_text(d.message, 2 * TEXT_LIMIT)},
                      **({"locations": [{"physicalLocation": {"artifactLocation": _artifact(d.file),
                                                              "region": {"startLine": d.line or 1}}}]}
                         if d.file else {})}
                     for d in report.diagnostics]
    if len(report.violations) > MAX_RESULTS:
        notifications.append({"level": "warning", "message": {
            "text": f"{len(report.violations) - MAX_RESULTS} more violations are not listed "
                    f"(code scanning accepts {MAX_RESULTS} results per run); see the json output"}})
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cloudsync", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "automationDetails": {"id": "cloudsync/policy/"},
            "originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "the repository root"}}},
            "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }


def render_sarif(report: PolicyReport) -> str:
    return json.dumps(report_to_sarif(report), indent=2)

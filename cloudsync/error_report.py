"""A failed command still writes its report: JSON with ``errors``, markdown with an error block.

CI posts what a command prints; a plan that failed and printed nothing would vanish from
the pull request. Messages come from diagnostics, which never hold a value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cloudsync.diagnostics import Diagnostic, Severity
from cloudsync.plan.comment import Comment, code, escape, marker, source_link

MAX_LISTED = 50  # a broken file can yield thousands of diagnostics; the comment counts the rest


def error_json(kind: str, stack: str, diagnostics: Sequence[Diagnostic]) -> str:
    """``{"format_version": 1, "kind", "stack", "ok": false, "errors": [...], "diagnostics": [...]}``."""
    return json.dumps({
        "format_version": 1, "kind": kind, "stack": stack, "ok": False,
        "errors": [d.as_dict() for d in diagnostics if d.severity is Severity.ERROR],
        "diagnostics": [d.as_dict() for d in diagnostics],
    }, indent=2)


def error_markdown(kind: str, stack: str, diagnostics: Sequence[Diagnostic]) -> str:
    """A "Plan error" (or "Drift error") block under the same marker as the report it replaces."""
    doc = Comment()
    doc.add(marker(kind, stack), f"### {kind.capitalize()} error: {code(stack)}", "",
            f"`cloudsync {kind}` failed; nothing was planned or changed. Fix the first error and push again.", "")
    for diag in diagnostics[:MAX_LISTED]:
        where = source_link(diag.file, diag.line)
        hint = f" (hint: {escape(diag.hint)})" if diag.hint else ""
        if not doc.add(f"> **{diag.severity.value}**: {escape(diag.message)}{hint} {where}".rstrip(), ""):
            break
    hidden = len(diagnostics) - min(len(diagnostics), MAX_LISTED)
    if hidden:
        doc.add(f"… and {hidden:,} more in the job log.")
    return doc.text()

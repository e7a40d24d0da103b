"""Markdown made for pull-request comments: bounded, linked, never holding a value.

GitHub refuses comments over 65,535 characters. :class:`Comment` keeps a running budget;
sections add rows until the budget is spent and then say how many they left out, so a
comment for 10,000 secrets still fits and still tells the whole story in counts.

Every value from the files or the clouds goes through :func:`~cloudsync.markdown.escape`
(text) or :func:`~cloudsync.markdown.code` (a code span): bounded, no control characters,
no markup, nothing that ends a cell, a code span, a link or the marker comment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from cloudsync.markdown import code, escape
from cloudsync.safe_text import safe_text

__all__ = ["DEFAULT_BUDGET", "GITHUB_COMMENT_LIMIT", "Comment", "code", "escape", "marker", "run_line", "source_link"]

GITHUB_COMMENT_LIMIT = 65_535
DEFAULT_BUDGET = 60_000  # room for a workflow's own header and footer


def marker(kind: str, stack: str) -> str:
    """A stable marker so a workflow can find and update its previous comment."""
    shown = re.sub(r"[^A-Za-z0-9_.-]", "_", safe_text(stack, 100))  # nothing can close the HTML comment
    return f"<!-- cloudsync:{kind} stack={shown} -->"


def source_link(file: str | None, line: int | None) -> str:
    """``file:line`` as a link: to the commit on GitHub when the workflow's variables say
    where, else relative to the repository root."""
    if not file:
        return ""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return code(f"{file}:{line}")
    shown = f"{path.as_posix()}:{line}" if line else path.as_posix()
    anchor = f"#L{line}" if line else ""
    target = quote(path.as_posix(), safe="/") + anchor  # a ')' or a space in a file name cannot end the link
    server, repo, sha = (os.environ.get(v) for v in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"))
    url = f"{server}/{repo}/blob/{sha}/{target}" if server and repo and sha else target
    return f"[{code(shown)}]({url})"


# Set to "false" by a workflow that composes one comment from several reports and names the
# commit and run once, in its own header (the shipped cloudsync-plan.yml): each report's line
# would repeat that link once per target.
RUN_LINK_VARIABLE = "CLOUDSYNC_RUN_LINK"


def run_line() -> str | None:
    """"Commit `abc1234` · [run 42](…)" from the workflow's variables, when they are set.

    The variables come from the runner, not from the pull request, but are escaped like
    any other text: a report must not trust its environment to be well formed.
    """
    server, repo, sha, run = (os.environ.get(v, "") for v in
                              ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA", "GITHUB_RUN_ID"))
    if not sha or os.environ.get(RUN_LINK_VARIABLE, "").strip().lower() in ("false", "0", "no", "off"):
        return None
    base = f"{server}/{repo}" if server and repo and _URL_SAFE.fullmatch(f"{server}/{repo}") else None
    commit = code(sha[:12])
    parts = [f"Commit [{commit}]({base}/commit/{quote(sha)})" if base else f"Commit {commit}"]
    if base and run:
        parts.append(f"[workflow run {escape(run, 40)}]({base}/actions/runs/{quote(run)})")
    return " · ".join(parts)


_URL_SAFE = re.compile(r"https?://[A-Za-z0-9.:-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class Comment:
    """A markdown document that never grows past its budget."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = min(budget, GITHUB_COMMENT_LIMIT)
        self.parts: list[str] = []
        self.used = 0

    def room(self) -> int:
        return self.budget - self.used

    def add(self, *lines: str) -> bool:
        """Append lines if they fit; report whether they did."""
        size = sum(len(line) + 1 for line in lines)
        if size > self.room():
            return False
        self.parts.extend(lines)
        self.used += size
        return True

    def section(self, summary: str, header: Sequence[str], rows: Sequence[str], *, reserve: int = 400,
                collapsed: bool = True) -> None:
        """A table, collapsible or open; rows that do not fit are counted, not dropped silently.

        ``summary`` sits inside raw HTML (``<summary>``) when collapsed: it must be escaped text.
        """
        closing = ["", "</details>", ""] if collapsed else [""]
        opening = [f"<details><summary>{summary}</summary>" if collapsed else f"**{summary}**", "", *header]
        if not self.add(*opening):
            self.add(f"_{summary}: not shown, the comment is full._")
            return
        closing_size = sum(len(line) + 1 for line in closing)
        shown = 0
        for row in rows:
            if len(row) + 1 + closing_size + reserve > self.room():
                break
            self.add(row)
            shown += 1
        if shown < len(rows):
            self.add("", f"… and {len(rows) - shown} more not listed here (the job log has the full report).")
        self.add(*closing)

    def text(self) -> str:
        text = "\n".join(self.parts) + "\n"
        assert len(text) <= GITHUB_COMMENT_LIMIT
        return text

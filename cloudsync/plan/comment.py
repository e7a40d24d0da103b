"""Markdown made for pull-request comments: bounded, linked, never holding a value.

GitHub refuses comments over 65,535 characters. :class:`Comment` keeps a running budget;
sections add rows until the budget is spent and then say how many they left out, so a
comment for 10,000 secrets still fits and still tells the whole story in counts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

GITHUB_COMMENT_LIMIT = 65_535
DEFAULT_BUDGET = 60_000  # room for a workflow's own header and footer


def marker(kind: str, stack: str) -> str:
    """A stable marker so a workflow can find and update its previous comment."""
    return f"<!-- cloudsync:{kind} stack={stack} -->"


def escape(text: str) -> str:
    """Safe inside a table cell: no pipes, no HTML, no line breaks."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


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
            return f"`{escape(file)}:{line}`"
    shown = f"{path.as_posix()}:{line}" if line else path.as_posix()
    anchor = f"#L{line}" if line else ""
    server, repo, sha = (os.environ.get(v) for v in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"))
    url = f"{server}/{repo}/blob/{sha}/{path.as_posix()}{anchor}" if server and repo and sha else f"{path.as_posix()}{anchor}"
    return f"[`{escape(shown)}`]({url})"


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

    def section(self, summary: str, header: Sequence[str], rows: Sequence[str], *, reserve: int = 400) -> None:
        """A collapsible table; rows that do not fit are counted, not dropped silently."""
        closing = ["", "</details>", ""]
        opening = [f"<details><summary>{summary}</summary>", "", *header]
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

"""One Diagnostic type for every problem a user can hit.

Diagnostics are collected, not raised one at a time, and rendered once at the edge
(the CLI) as ``path:line:col: error: message`` followed by an optional hint.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


def suggest(word: str, choices: Sequence[str], otherwise: str = "declared") -> str:
    """A hint for a mistyped name: ``did you mean 'x'?``, else the names there are."""
    close = difflib.get_close_matches(word[:100], list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{otherwise}: {', '.join(sorted(choices)) or 'none'}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem with a location (when it has one) and a hint of the fix."""

    message: str
    severity: Severity = Severity.ERROR
    file: str | None = None
    line: int | None = None
    col: int | None = None
    hint: str | None = None

    def render(self) -> str:
        """One line, whatever the message quotes: controls escaped, each part bounded."""
        where = ""
        if self.file:
            where = safe_text(self.file, NAME_LIMIT)
            if self.line:
                where += f":{self.line}"
                if self.col:
                    where += f":{self.col}"
            where += ": "
        text = f"{where}{self.severity.value}: {safe_text(self.message, 2 * TEXT_LIMIT)}"
        if self.hint:
            text += f" (hint: {safe_text(self.hint, TEXT_LIMIT)})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "hint": self.hint,
        }


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class CloudsyncError(Exception):
    """An error that carries diagnostics for the user; never holds a secret value."""

    def __init__(self, diagnostics: Iterable[Diagnostic] | Diagnostic | str) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.render() for d in self.diagnostics))

"""Where the CLI writes: results to stdout, diagnostics and progress to stderr.

Shared by every command module, with the one error boundary that turns a CloudsyncError
into one-line diagnostics and exit 1, and never shows a traceback by default. Both
consoles escape control characters in whatever they print (a render hook), so a name or
message that some caller forgot to pass through ``safe_text`` still cannot drive the
terminal: renderers bound and escape each value, this is the last line of defence.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import typer
from rich.console import Console, ConsoleRenderable, RenderHook
from rich.text import Text

from cloudsync.diagnostics import CloudsyncError, Diagnostic, Severity
from cloudsync.safe_text import safe_text

F = TypeVar("F", bound=Callable[..., Any])


def safe_rich_text(text: Text) -> Text:
    """``text`` with every unsafe character escaped (line feeds kept) and its styles moved along."""
    plain = text.plain
    if safe_text(plain, None, lines=True) == plain:
        return text
    pieces = [safe_text(char, None, lines=True) for char in plain]
    offsets = [0]
    for piece in pieces:
        offsets.append(offsets[-1] + len(piece))
    safe = Text("".join(pieces), style=text.style, justify=text.justify, overflow=text.overflow,
                no_wrap=text.no_wrap, end=text.end, tab_size=text.tab_size)
    for span in text.spans:
        safe.stylize(span.style, offsets[min(span.start, len(plain))], offsets[min(span.end, len(plain))])
    return safe


class _EscapeControls(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [safe_rich_text(r) if isinstance(r, Text) else r for r in renderables]


def _console(*, stderr: bool) -> Console:
    # No emoji codes, no highlighting, no wrapping: JSON, SARIF and plans reach the stream as written.
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)
    console.push_render_hook(_EscapeControls())
    return console


out = _console(stderr=False)
err = _console(stderr=True)


def print_line(console: Console, text: str, style: str | None = None) -> None:
    """One line of progress (a change applied, say), without rich where nothing is styled.

    Off a terminal (CI logs, pipes) rich renders no style, yet laying out a line costs it
    ~0.1 ms: a second per 10,000 changes. Such lines are escaped like everything else and
    written as they are; on a terminal rich prints them, above any live progress display.
    """
    if console.is_terminal:
        console.print(text, style=style, markup=False)
        return
    console.file.write(safe_text(text, None, lines=True) + "\n")


def print_diagnostics(diags: Iterable[Diagnostic]) -> None:
    for diag in diags:
        style = "red" if diag.severity is Severity.ERROR else "yellow"
        err.print(diag.render(), style=style, markup=False)


def handles_errors(func: F) -> F:
    """Turn CloudsyncError into diagnostics and exit 1; never show a traceback by default."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CloudsyncError as exc:
            print_diagnostics(exc.diagnostics)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted", markup=False)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            logging.getLogger("cloudsync").debug("internal error", exc_info=True)
            err.print(f"error: internal error ({exc.__class__.__name__}); this is a bug in cloudsync",
                      style="red", markup=False)
            err.print("hint: rerun with --verbose for details and report it", markup=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]

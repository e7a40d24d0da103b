"""Where the CLI writes: results to stdout, diagnostics and progress to stderr.

Shared by every command module, with the one error boundary that turns a CloudsyncError
into one-line diagnostics and exit 1, and never shows a traceback by default.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import typer
from rich.console import Console

from cloudsync.diagnostics import CloudsyncError, Diagnostic, Severity

F = TypeVar("F", bound=Callable[..., Any])

# No emoji codes, no highlighting, no wrapping: JSON, SARIF and plans reach the stream as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


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

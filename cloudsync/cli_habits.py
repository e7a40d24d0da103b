"""The habits Terraform, Typer and Rich users bring, applied once to the whole command tree.

cli.py declares commands; this module makes them behave the way people expect without
touching each declaration: ``-v``/``--no-color`` after the subcommand as well as before it,
readable metavars (``DIR``, ``TARGET``, ``FILE`` instead of ``<list[str]>`` and
``{plan_file}``), full one-line summaries in ``cloudsync --help``, and "did you mean" for a
mistyped choice (``--format jsn``), with the same difflib matching the file diagnostics use.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from cloudsync.diagnostics import suggest

# Options every leaf command accepts too, so `cloudsync plan -v` works like `cloudsync -v plan`.
VERBOSE = ("-v", "--verbose")
NO_COLOR = "--no-color"

_METAVARS = {"--dir": "DIR", "--policy-dir": "DIR", "--target": "TARGET", "--out": "FILE", "--parallelism": "N",
             "--unused-after": "DURATION", "--lock-timeout": "DURATION"}


def set_verbose(on: bool) -> None:
    """``-v``: cloudsync's own debug log on stderr (never a value)."""
    if on:
        logging.getLogger("cloudsync").setLevel(logging.DEBUG)


def set_no_color(on: bool) -> None:
    """``--no-color``: no ANSI styles at all on either stream, as ``NO_COLOR`` does for colours."""
    if on:
        from cloudsync.console import err, out

        for console in (out, err):
            console.no_color = True
            console._color_system = None  # rich keeps bold/dim under no_color; plain text is what was asked for


def _leaf_copy(option: TyperOption, action: Callable[[bool], None]) -> TyperOption:
    """The root's flag, for a subcommand: same spelling and help, acted on at once, not passed on."""
    clone = copy.copy(option)
    clone.expose_value = False
    clone.callback = lambda ctx, param, value: action(bool(value))
    return clone


class _ReadableArgument(TyperArgument):
    """An argument shown as ``FILE`` / ``[FILE]`` (click's convention), not ``{plan_file}``."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:  # typer's vendored click Context
        return None


def _metavar(param: TyperOption) -> str:
    longest = max(param.opts, key=len)
    if longest in _METAVARS:
        return _METAVARS[longest]
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return "DIR" if "dir" in longest else "FILE"
    if annotation is int:
        return "N"
    return longest.lstrip("-").replace("-", "_").upper()


def _is_choice(param: object) -> bool:
    return bool(getattr(getattr(param, "type_descriptor", None), "is_choice", False))


def _polish(command: TyperCommand | TyperGroup, flags: list[tuple[TyperOption, Callable[[bool], None]]]) -> None:
    """Summaries, metavars and the global flags on one command (recursively for groups)."""
    if command.help and not command.short_help:
        # click cuts a summary at 45 characters mid-sentence; the first paragraph is the summary.
        command.short_help = inspect.cleandoc(command.help).split("\n\n")[0].replace("\n", " ")
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if isinstance(sub, TyperCommand | TyperGroup):
                _polish(sub, flags)
        return
    for param in command.params:
        if isinstance(param, TyperArgument) and not isinstance(param, _ReadableArgument):
            param.metavar = param.metavar or ("FILE" if "file" in (param.name or "") else (param.name or "").upper())
            param.__class__ = _ReadableArgument  # typer has no hook for an argument's class
        elif isinstance(param, TyperOption) and param.metavar is None and not param.is_flag and not _is_choice(param):
            param.metavar = _metavar(param)
    taken = {opt for param in command.params for opt in param.opts}
    command.params += [_leaf_copy(option, action) for option, action in flags if not taken & set(option.opts)]


def _with_suggestion(exc: typer.BadParameter) -> typer.BadParameter:
    """``'jsn' is not one of 'text', 'json'`` gains ``(did you mean 'json'?)``."""
    descriptor = getattr(exc.param, "type_descriptor", None)
    if exc.param is None or descriptor is None or not _is_choice(exc.param) or exc.message.count("'") < 2:
        return exc
    word = exc.message.split("'")[1]
    choices = [str(getattr(c, "value", c)) for c in descriptor.choices or ()]
    exc.message = f"{exc.message.removeprefix('Value error, ')} ({suggest(word, choices, 'one of')})"
    return exc


class CloudsyncGroup(TyperGroup):
    """The root group: polishes the tree once, and adds "did you mean" to a mistyped choice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions: dict[str, Callable[[bool], None]] = {VERBOSE[1]: set_verbose, NO_COLOR: set_no_color}
        flags = [(p, actions[o]) for p in self.params if isinstance(p, TyperOption) for o in p.opts if o in actions]
        for command in self.commands.values():
            if isinstance(command, TyperCommand | TyperGroup):
                _polish(command, flags)

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            raise _with_suggestion(exc) from exc.__cause__

"""Booleans in stack files are YAML's ``true`` and ``false``, nothing pydantic would coerce.

Pydantic's lax mode reads ``"yes"``, ``"off"``, ``"0"``, ``1`` and ``0.0`` as booleans: a
quoted ``deletion_protection: "false"`` would pass, and ``purge_on_delete: 1`` (meant as "one
day"?) would purge. Here a boolean key takes only what YAML itself reads as a boolean; anything
else is the usual ``file:line:col`` diagnostic with a hint of what to write (the loader shows a
``ValueError``'s ``hint``, as for durations). The JSON schema still says ``boolean``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from cloudsync.config.limits import shown

_TRUE_WORDS = frozenset({"true", "yes", "y", "on", "1", "enable", "enabled"})
_FALSE_WORDS = frozenset({"false", "no", "n", "off", "0", "disable", "disabled"})


class BoolError(ValueError):
    """A value that is not a YAML boolean; ``hint`` says what to write (the loader shows it)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _meant(value: object) -> str | None:
    """``"true"``/``"false"`` when the value reads clearly as one of them."""
    text = str(value).strip().lower() if isinstance(value, str | int | float) else None
    if text is None:
        return None
    if text in _TRUE_WORDS:
        return "true"
    return "false" if text in _FALSE_WORDS or text in ("0.0",) else None


def refused(value: object, alternatives: str = "") -> BoolError:
    """The error for a value that is not ``true`` or ``false``; ``alternatives`` names what else the key takes."""
    meant = _meant(value)
    if meant is None:
        hint = "write true or false"
    elif isinstance(value, str):
        hint = f"write {meant}, without quotes: {shown(value)} is a string, not a boolean"
    else:
        hint = f"write {meant}: {shown(value)} is a number, not a boolean"
    return BoolError(f"expected true or false{alternatives}, got {shown(value)}", hint)


def _strict(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise refused(value)


def no_coerced_bool(alternatives: str) -> BeforeValidator:
    """For a key that takes a boolean or something else (a list, a mapping): a string or a number
    is refused as a boolean would be, instead of pydantic reading ``"off"`` as false."""

    def check(value: Any) -> Any:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            raise refused(value, alternatives)
        return value

    return BeforeValidator(check)


def bool_tag(value: Any) -> str:
    """The union member a value is for, in ``Annotated[Annotated[bool, Tag("bool")] | Annotated[X, Tag("other")],
    Discriminator(bool_tag)]``: a mistake in the other member is reported alone, not with a
    "not a boolean" error beside it."""
    return "bool" if isinstance(value, bool) else "other"


Flag = Annotated[bool, BeforeValidator(_strict)]
"""A boolean key of a stack file: only YAML's ``true`` and ``false``."""

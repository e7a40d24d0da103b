"""Durations as written in desired-state files and options: ``30d``, ``12h``, ``90min``, ``3mo``.

One grammar everywhere: a whole number followed by a unit. ``m`` alone is refused, because
people write ``rotation: 3m`` meaning three months and lock timeouts write ``5m`` meaning
five minutes; the hint names both readings. ``mo`` and ``y`` are fixed lengths (30 and 365
days), so ``3mo`` always means 90 days and a rotation never drifts with the calendar.
"""

from __future__ import annotations

import re
from datetime import timedelta

from cloudsync.config.limits import shown

_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400, "y": 365 * 86400}
FILE_UNITS = ("min", "h", "d", "w", "mo", "y")
"""Units of durations in desired-state files and report options (rotation, expiry, unused-after)."""
WAIT_UNITS = ("s", "min", "h")
"""Units of waits and leases (``--lock-timeout``, ``CLOUDSYNC_LOCK_LEASE``), where a bare number is seconds."""

DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})(min|mo|[hdwy])$")
_ANY_RE = re.compile(r"^([0-9]{1,7})([A-Za-z]*)$")


class DurationError(ValueError):
    """A duration that cannot be read; ``hint`` says how to write it (the loader shows it as the hint)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _units_hint(units: tuple[str, ...]) -> str:
    examples = {"s": "30s", "min": "90min", "h": "12h", "d": "30d", "w": "2w", "mo": "3mo", "y": "1y"}
    return f"a whole number and a unit ({', '.join(units)}), e.g. {', '.join(examples[u] for u in units[:4])}"


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"the yes/no value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {shown(value)}"
    return {list: "a list", dict: "a mapping", type(None): "an empty value"}.get(type(value), "that value")


def parse_duration(text: object, units: tuple[str, ...] = FILE_UNITS, *, bare_seconds: bool = False) -> timedelta:
    """Parse ``30d`` / ``12h`` / ``90min`` / ``3mo``; raise :class:`DurationError` with a message and a hint.

    ``bare_seconds`` accepts ``0`` and a bare number as seconds (lock timeouts).
    """
    if not isinstance(text, str):
        whole = isinstance(text, int) and not isinstance(text, bool) and 0 < text <= 999_999
        example = f"{text}d" if whole else "30d"
        raise DurationError(f"a duration is text such as {example}, not {_kind(text)}",
                            hint=f"write {example} for {text} days; {_units_hint(units)}" if whole
                            else _units_hint(units))
    match = _ANY_RE.fullmatch(text.strip() if bare_seconds else text)
    if match is None or (match.group(1).startswith("0") and match.group(1) != "0"):
        raise DurationError(f"bad duration {shown(text)}", hint=_units_hint(units))
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "" and bare_seconds and amount <= 999_999:
        return timedelta(seconds=amount)
    if unit == "m":
        minutes = f"write {amount}min for minutes"
        raise DurationError(f"bad duration {shown(text)}: 'm' could mean minutes or months",
                            hint=f"{minutes} or {amount}mo (= {amount * 30}d) for months"
                            if "mo" in units else minutes)
    if unit not in units:
        raise DurationError(f"bad duration {shown(text)}" + (f": unit {unit!r} is not used here" if unit else
                                                              ": a number needs a unit"), hint=_units_hint(units))
    if amount == 0 and not bare_seconds:
        raise DurationError(f"bad duration {shown(text)}: it must be longer than zero", hint=_units_hint(units))
    if amount > 999_999:
        raise DurationError(f"bad duration {shown(text)}: at most 999999 of a unit", hint=_units_hint(units))
    return timedelta(seconds=amount * _SECONDS[unit])


def format_duration(delta: timedelta) -> str:
    """The shortest exact form of ``delta`` in file units (``90d``, ``12h``, ``90min``)."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}min"

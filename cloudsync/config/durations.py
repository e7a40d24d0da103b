"""Durations as written in desired-state files: ``30d``, ``12h``, ``90m``."""

from __future__ import annotations

import re
from datetime import timedelta

from cloudsync.config.limits import shown

DURATION_RE = re.compile(r"^([1-9][0-9]{0,5})([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """Parse ``30d`` / ``12h`` / ``90m``; raise ValueError with a readable message."""
    match = DURATION_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"bad duration {shown(text)}: write a whole number followed by d, h or m, e.g. 30d, 12h, 90m"
        )
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"

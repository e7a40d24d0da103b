"""The one duration grammar: files, report options, lock waits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloudsync.config.durations import WAIT_UNITS, DurationError, format_duration, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("90min", timedelta(minutes=90)),
    ("12h", timedelta(hours=12)),
    ("30d", timedelta(days=30)),
    ("2w", timedelta(days=14)),
    ("3mo", timedelta(days=90)),
    ("1y", timedelta(days=365)),
    ("999999y", timedelta(days=999999 * 365)),
])
def test_file_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("value", "message", "hint"), [
    ("3m", "'m' could mean minutes or months", "write 3min for minutes or 3mo (= 90d) for months"),
    (30, "not the number 30", "write 30d for 30 days"),
    (0, "not the number 0", "a whole number and a unit"),
    (True, "not the yes/no value true", "a whole number and a unit"),
    (None, "not an empty value", "a whole number and a unit"),
    ("30", "a number needs a unit", "a whole number and a unit"),
    ("30s", "unit 's' is not used here", "(min, h, d, w, mo, y)"),
    ("0d", "longer than zero", "a whole number and a unit"),
    ("030d", "bad duration '030d'", "a whole number and a unit"),
    ("30d\n", "bad duration '30d\\n'", "a whole number and a unit"),
    ("1000000d", "at most 999999", "a whole number and a unit"),
    ("9" * 5000 + "d", "bad duration", "a whole number and a unit"),
])
def test_refused_durations_say_why_and_how(value: object, message: str, hint: str) -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration(value)
    assert message in str(raised.value) and hint in raised.value.hint


@pytest.mark.parametrize(("text", "seconds"), [("0", 0), ("45", 45), (" 45s ", 45), ("5min", 300), ("1h", 3600)])
def test_waits(text: str, seconds: int) -> None:
    assert parse_duration(text, WAIT_UNITS, bare_seconds=True) == timedelta(seconds=seconds)


def test_a_wait_in_m_names_minutes_only() -> None:
    with pytest.raises(DurationError) as raised:
        parse_duration("5m", WAIT_UNITS, bare_seconds=True)
    assert raised.value.hint == "write 5min for minutes"


@pytest.mark.parametrize(("delta", "text"), [(timedelta(days=90), "90d"), (timedelta(hours=36), "36h"),
                                             (timedelta(minutes=90), "90min")])
def test_formatted_durations_parse_back(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text and parse_duration(text) == delta

"""Durations as a user writes them: `m` is refused with both readings, wrong types get a hint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

HEAD = """\
version: 1
stack: shop
targets:
  local: {provider: local}
"""


def validate(cli: Callable[..., CliResult], write_stack: Callable[..., Path], body: str) -> CliResult:
    root = write_stack(HEAD + body)
    return cli("validate", "-C", str(root))


@pytest.mark.parametrize(("line", "col", "written"), [
    ("defaults:\n  rotation: 3m\n", "6:13", "defaults.rotation"),
    ("defaults:\n  expires: 3m\n", "6:12", "defaults.expires"),
    ("secrets:\n  - {name: a, targets: [local], rotation: 3m}\n", "6:43", "rotation"),
    ("secrets:\n  - {name: a, targets: [local], rotation: {every: 3m}}\n", "6:51", "rotation.every"),
    ("secrets:\n  - {name: a, targets: [local], expires: 3m}\n", "6:42", "expires"),
])
def test_m_alone_is_refused_naming_minutes_and_months(cli: Callable[..., CliResult],
                                                       write_stack: Callable[..., Path],
                                                       line: str, col: str, written: str) -> None:
    result = validate(cli, write_stack, line)
    assert result.code == 1, written
    assert f"cloudsync.yaml:{col}: error:" in result.stderr, result.stderr
    assert "bad duration '3m': 'm' could mean minutes or months" in result.stderr
    assert "(hint: write 3min for minutes or 3mo (= 90d) for months)" in result.stderr


@pytest.mark.parametrize(("value", "message", "hint"), [
    ("30", "a duration is text such as 30d, not the number 30", "write 30d for 30 days"),
    ("2.5", "a duration is text such as 30d, not the number 2.5", "a whole number and a unit"),
    ("true", "not the yes/no value true", "a whole number and a unit"),
    ("[30d]", "not a list", "a whole number and a unit"),
    ("{days: 30}", "missing required key 'every'", None),
    ("30s", "unit 's' is not used here", "a whole number and a unit (min, h, d, w, mo, y)"),
    ("0d", "it must be longer than zero", "a whole number and a unit"),
])
def test_every_wrong_duration_gets_a_located_diagnostic_not_a_pydantic_message(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], value: str, message: str,
        hint: str | None) -> None:
    result = validate(cli, write_stack, f"secrets:\n  - name: a\n    targets: [local]\n    rotation: {value}\n")
    assert result.code == 1
    assert "cloudsync.yaml:8:" in result.stderr and message in result.stderr, result.stderr
    if hint:
        assert f"(hint: {hint}" in result.stderr
    assert "did you mean 'days'" not in result.stderr
    assert "valid string" not in result.stderr and "Input should" not in result.stderr


def test_min_w_mo_and_y_are_read_as_documented(cli: Callable[..., CliResult],
                                                write_stack: Callable[..., Path]) -> None:
    # CS006 allows rotation periods of at most 90 days: 3mo is exactly 90, 13w is 91, 1y is 365.
    root = write_stack(HEAD + """\
secrets:
  - {name: a, targets: [local], rotation: 3mo, value: {generate: {length: 40}}}
  - {name: b, targets: [local], rotation: 13w, value: {generate: {length: 40}}}
  - {name: c, targets: [local], rotation: 90min, value: {generate: {length: 40}}}
  - {name: d, targets: [local], rotation: 1y, value: {generate: {length: 40}}}
""")
    assert cli("validate", "-C", str(root)).code == 0
    result = cli("policy", "check", "--format", "json", "-C", str(root))
    violations = json.loads(result.stdout)["violations"]
    assert {v["address"] for v in violations if v["policy"] == "CS006"} == {"local:b", "local:d"}


@pytest.mark.parametrize(("option", "value", "hint"), [
    ("--lock-timeout", "5m", "write 5min for minutes)"),
    ("--lock-timeout", "1d", "a whole number and a unit (s, min, h)"),
])
def test_lock_timeouts_use_the_same_grammar(cli: Callable[..., CliResult], write_stack: Callable[..., Path],
                                            option: str, value: str, hint: str) -> None:
    root = write_stack(HEAD)
    result = cli("apply", "--auto-approve", option, value, "-C", str(root))
    assert result.code == 1
    assert f"error: {option}: bad duration '{value}'" in result.stderr and hint in result.stderr, result.stderr
    assert cli("apply", "--auto-approve", option, "5min", "-C", str(root)).code == 0


def test_the_lease_variable_refuses_m_too(cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    root = write_stack(HEAD)
    result = cli("apply", "--auto-approve", "-C", str(root), env={"CLOUDSYNC_LOCK_LEASE": "2m"})
    assert result.code == 1
    assert "CLOUDSYNC_LOCK_LEASE: bad duration '2m'" in result.stderr and "write 2min" in result.stderr


def test_unused_after_refuses_m(cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    root = write_stack(HEAD)
    result = cli("access", "--unused-after", "6m", "-C", str(root))
    assert result.code == 1
    assert "--unused-after: bad duration '6m'" in result.stderr and "6mo (= 180d) for months" in result.stderr


def test_grace_refuses_m_with_both_readings(cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    root = write_stack(HEAD + "secrets:\n  - {name: a, targets: [local], value: {generate: {length: 40}}}\n")
    result = cli("plan", "--replace", "a", "--grace", "3m", "-C", str(root))
    assert result.code == 1
    assert "--grace: bad duration '3m'" in result.stderr and "write 3min for minutes or 3mo" in result.stderr
    accepted = cli("plan", "--replace", "a", "--grace", "90min", "-C", str(root))
    assert "bad duration" not in accepted.output and "(value, replace)" in accepted.stdout

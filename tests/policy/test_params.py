"""Policy parameters and waivers take any YAML value: each ends checked, or in a diagnostic at its line.

Before, a date in a parameter list reached CEL and broke with an internal error (ValueError),
and ``validate`` called the same stack valid.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from cloudsync.config.models import PolicyConfig
from cloudsync.config.yamlsource import SourceMap
from cloudsync.diagnostics import CloudsyncError
from cloudsync.policy import builtin_dir, evaluate
from cloudsync.policy.loader import load_policies
from cloudsync.policy.settings import enabled_policies
from cloudsync.policy.testing import run_policy_tests
from tests.conftest import CLI

from .helpers import TODAY, stack_with, write

HEAD = """\
version: 1
stack: demo
targets: {local: {provider: local}}
defaults: {labels: {owner: o}, rotation: 30d}
policy:
  parameters:
    CS001: {public_members: [allUsers, 2024-01-01]}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_date_in_a_parameter_list_is_a_diagnostic_in_validate_and_check(tmp_path: Path) -> None:
    stack_with(tmp_path, "- {name: app/x, targets: [local]}\n", head=HEAD)
    want = (f"{tmp_path / 'cloudsync.yaml'}:7:40: error: parameter 'public_members' of CS001 must be a list of "
            "strings, but item 2 is a date")
    for command in ("validate", "policy check"):
        result = _cli(*command.split(), "-C", str(tmp_path))
        assert result.returncode == 1, result.stdout
        assert want in result.stderr.splitlines()[0], result.stderr
        assert "internal error" not in result.stderr and "valid:" not in result.stdout


def test_the_issues_self_referencing_parameter_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    # Killed plan and policy check with SIGSEGV (CEL converting an endless list). The YAML
    # layer may refuse the alias first; either way it is exit 1 with a diagnostic.
    head = HEAD.replace("CS001: {public_members: [allUsers, 2024-01-01]}", "CS001: {public_members: &r [*r]}")
    (tmp_path / "cloudsync.yaml").write_text(head + "secrets:\n  - {name: app/x, targets: [local]}\n")
    for command in ("validate", "policy check", "plan --target local"):
        result = _cli(*command.split(), "-C", str(tmp_path))
        assert result.returncode == 1, (command, result.returncode, result.stderr)
        assert "cloudsync.yaml:7:" in result.stderr and "Traceback" not in result.stderr


def _policies() -> Any:
    return load_policies([builtin_dir()]).policies


@pytest.mark.parametrize(("policy", "name", "value", "message"), [
    ("CS001", "public_members", [date(2024, 1, 1)], "must be a list of strings, but item 1 is a date"),
    ("CS001", "public_members", [datetime(2024, 1, 1, 10)], "must be a list of strings, but item 1 is a timestamp"),
    ("CS001", "public_members", [["allUsers"]], "must be a list of strings, but item 1 is a list"),
    ("CS001", "public_members", [{"a": 1}], "must be a list of strings, but item 1 is a mapping"),
    ("CS001", "public_members", [None], "must be a list of strings, but item 1 is null"),
    ("CS001", "public_members", [7], "must be a list of strings, but item 1 is an integer"),
    ("CS001", "public_members", "allUsers", "must be a list of strings, got a string"),
    ("CS001", "public_members", {"allUsers"}, "must be a list of strings, got a set"),
    ("CS001", "public_members", ["x"] * 1001, "holds 1001 items; at most 1000 are allowed"),
    ("CS003", "max_readers", 2**64, "is an integer outside the 64-bit range CEL computes with"),
    ("CS003", "max_readers", 2.5, "must be an integer, got a number"),
    ("CS003", "max_readers", True, "must be an integer, got a boolean"),
    ("CS003", "max_readers", b"\x00", "must be an integer, got binary data"),
    ("CS009", "pattern", date(2024, 1, 1), "must be a string, got a date"),
    ("CS009", "pattern", "x" * 5000, "is a string longer than 4096 characters"),
])
def test_every_yaml_type_is_checked_against_the_declared_type(policy: str, name: str, value: Any,
                                                              message: str) -> None:
    with pytest.raises(CloudsyncError) as info:
        enabled_policies(_policies(), PolicyConfig(parameters={policy: {name: value}}), SourceMap("cloudsync.yaml"))
    (diag,) = info.value.diagnostics
    assert diag.message == f"parameter {name!r} of {policy} {message}" and diag.file == "cloudsync.yaml"


def test_a_list_holding_itself_is_refused_not_walked() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(CloudsyncError, match="item 1 is a list"):
        enabled_policies(_policies(), PolicyConfig(parameters={"CS001": {"public_members": looped}}))


def test_checked_values_reach_cel_as_their_declared_type(tmp_path: Path) -> None:
    write(tmp_path / "p", {"t.yaml": """\
        policies:
          - id: T001
            title: t
            severity: error
            rule: 'params.ratio > 1.5 && params.ids.all(i, i > 0)'
            message: 'ratio {ratio}'
            parameters:
              ratio: {default: 0.5}
              ids: {default: [1.5]}
        """})
    enabled = enabled_policies(load_policies([tmp_path / "p"]).policies,
                               PolicyConfig(parameters={"T001": {"ratio": 2, "ids": [1, 2]}}))
    assert enabled[0].params == {"ratio": 2.0, "ids": [1.0, 2.0]}  # integers where numbers are declared
    stack = stack_with(tmp_path / "s", "- {name: app/x, targets: [local]}\n", head=textwrap.dedent("""\
        version: 1
        stack: demo
        targets: {local: {provider: local}}
        policy: {builtin: false, parameters: {T001: {ratio: 2, ids: [1, 2]}}}
        """))
    assert evaluate(stack, extra_dirs=[tmp_path / "p"], today=TODAY).violations == []


@pytest.mark.parametrize(("default", "message"), [
    ("92233720368547758070", "integer out of range"),  # refused by the YAML layer's 64-bit bound first
    ("[1, a]", "the default of 'limit' mixes integer, string items; a list holds one kind"),
    (".nan", "the default of 'limit' is not a finite number"),
])
def test_a_default_must_declare_a_usable_type(tmp_path: Path, default: str, message: str) -> None:
    write(tmp_path, {"t.yaml": f"""\
        policies:
          - id: T001
            title: t
            severity: error
            rule: 'true'
            message: m
            parameters:
              limit: {{default: {default}}}
        """})
    with pytest.raises(CloudsyncError) as info:
        load_policies([tmp_path])
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.message) == (8, message)


@pytest.mark.parametrize(("waiver", "line", "message"), [
    ("{policy: CS001, secrets: [2024-01-01], reason: r, expires: 2030-01-01}", 2, "secrets: input should be"),
    ("{policy: CS001, secrets: [a], reason: {a: 1}, expires: 2030-01-01}", 2, "reason: input should be"),
    ("{policy: CS001, secrets: [a], reason: r, expires: 2030-01-01T10:00:00}", 2, "expires:"),
    ("{policy: [CS001], secrets: [a], reason: r, expires: 2030-01-01}", 2, "policy: input should be"),
    ("{policy: CS001, secrets: [a], reason: r, expires: [2030-01-01]}", 2, "expires: input should be"),
])
def test_any_yaml_value_in_a_waiver_is_a_diagnostic_at_its_line(tmp_path: Path, waiver: str, line: int,
                                                               message: str) -> None:
    write(tmp_path, {"w.yaml": f"waivers:\n  - {waiver}\n"})
    with pytest.raises(CloudsyncError) as info:
        load_policies([builtin_dir(), tmp_path])
    (diag,) = info.value.diagnostics
    assert diag.line == line and diag.message.startswith(message), diag.message


def test_a_policy_test_case_parameter_points_at_its_case(tmp_path: Path) -> None:
    write(tmp_path, {"cases.yaml": """\
        policies: [CS001]
        tests:
          - name: a date where a principal id belongs
            input: {secret: {name: app/x}}
            parameters: {CS001: {public_members: [2024-01-01]}}
        """})
    (result,) = run_policy_tests([tmp_path / "cases.yaml"]).results
    assert result.error is not None and "cases.yaml:5:43:" in result.error  # at the item itself
    assert "must be a list of strings, but item 1 is a date" in result.error

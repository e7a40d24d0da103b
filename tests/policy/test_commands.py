"""The `cloudsync policy` commands: exit codes, formats, errors as diagnostics (never tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import invoke, stack_with, write


@pytest.fixture
def bad_stack(tmp_path: Path) -> Path:
    stack_with(tmp_path / "s", "- {name: app/x, targets: [gcp-prod], labels: {env: prod}, readers: [everyone]}\n")
    return tmp_path / "s"


def test_check_blocks_with_exit_1_and_json(bad_stack: Path) -> None:
    code, out, _ = invoke("check", "-C", str(bad_stack), "--format", "json")
    assert code == 1
    assert [v["policy"] for v in json.loads(out)["violations"]] == ["CS001", "CS005"]


@pytest.mark.parametrize("fmt", ["text", "sarif", "junit"])
def test_check_formats(bad_stack: Path, fmt: str) -> None:
    code, out, _ = invoke("check", "-C", str(bad_stack), "-f", fmt)
    assert code == 1 and "CS001" in out


def test_check_passes_clean_stack_with_extra_policy_dir(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    stack_with(stack, "- {name: app/x, targets: [gcp-prod], readers: [api-prod]}\n")
    write(tmp_path / "org", {"org.yaml": (
        "policies:\n  - {id: ORG1, title: t, severity: warning, rule: 'secret.description != null', "
        "message: '{address} needs a description'}\n")})
    code, out, _ = invoke("check", "-C", str(stack), "--policy-dir", str(tmp_path / "org"))
    assert code == 0  # a warning does not block
    assert "warning ORG1" in out and "Policy check passed: 0 errors, 1 warning" in out


def test_check_reports_bad_policy_files_as_diagnostics(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    stack_with(stack, "[]\n", extra={"policies/p.yaml": (
        "policies:\n  - {id: P1, title: t, severity: error, rule: 'secret.nope', message: m}\n")})
    code, out, err = invoke("check", "-C", str(stack))
    assert code == 1 and out == ""
    assert "p.yaml:2:" in err and "secret has no field 'nope'" in err and "Traceback" not in err


def test_check_without_a_stack(tmp_path: Path) -> None:
    code, _, err = invoke("check", "-C", str(tmp_path))
    assert code == 1 and "no cloudsync.yaml" in err


def test_test_runs_builtin_and_stack_cases(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    stack_with(stack, "[]\n", extra={
        "policies/org.yaml": "policies:\n  - {id: ORG1, title: t, severity: error, rule: 'secret.description != null', "
                             "message: m}\n",
        "policies/tests/org.yaml": "policies: [ORG1]\ntests:\n"
                                   "  - {name: described, input: {secret: {description: d}}, expect: []}\n"
                                   "  - {name: bare, input: {secret: {name: a/b}}, "
                                   "expect: [{policy: ORG1, address: 'local:a/b'}]}\n"})
    code, out, _ = invoke("test", "-C", str(stack))
    assert code == 0
    passed, total = out.strip().splitlines()[-1].removeprefix("PASS: ").split("/")
    assert passed == total and int(total) > 50


def test_test_fails_with_exit_1_and_junit(tmp_path: Path) -> None:
    write(tmp_path, {"t.yaml": "policies: [CS008]\ntests:\n  - {name: wrong, input: {secret: {}}, expect: []}\n"})
    code, out, _ = invoke("test", str(tmp_path / "t.yaml"), "-C", str(tmp_path))
    assert code == 1 and "FAIL" in out and "PASS: 0/1  FAIL: 1/1" in out
    code, out, _ = invoke("test", str(tmp_path / "t.yaml"), "-C", str(tmp_path), "--format", "junit")
    assert code == 1 and out.startswith("<?xml")


def test_test_rejects_bad_case_files_and_empty_runs(tmp_path: Path) -> None:
    write(tmp_path, {"t.yaml": "tests:\n  - {name: x, input: {secret: {}}, stack: 'version: 1', expect: []}\n"})
    code, _, err = invoke("test", str(tmp_path / "t.yaml"), "-C", str(tmp_path))
    assert code == 1 and "t.yaml:2:" in err and "exactly one of 'stack'" in err
    code, _, err = invoke("test", "-C", str(tmp_path), "--run", "no-such-case-name")
    assert code == 1 and "no policy test cases ran" in err


def test_schema_prints_the_versioned_input_document() -> None:
    code, out, _ = invoke("schema")
    schema = json.loads(out)
    assert code == 0 and schema["$id"] == "urn:cloudsync:policy-input:1"
    assert set(schema["properties"]) == {"secret", "target", "principals", "stack", "change", "remote", "params",
                                         "now"}
    assert "readers_resolved" in schema["properties"]["secret"]["properties"]

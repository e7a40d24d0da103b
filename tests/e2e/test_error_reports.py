"""A failed plan, drift or policy check is a report too: CI posts stdout, so it must say why.

Before, `plan --format markdown` and `--format json` printed nothing on error and the failing
shard silently disappeared from the pull request comment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, assert_no_canary

BROKEN = """\
version: 1
stack: broken
targets:
  local: {provider: local}
principals:
  api: {}
secrets:
  - name: app/token
    targets: [local]
    value: {env: APP_TOKEN}
    readers: ["<b>ap|i*_</b>"]
"""


@pytest.mark.parametrize("command", [["plan"], ["drift"], ["policy", "check"]], ids=" ".join)
def test_json_failure_lists_the_errors_with_file_line_and_hint(
        command: list[str], cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    stack = write_stack(BROKEN)
    result = cli(*command, "-C", str(stack), "--format", "json")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"], report
    error = report["errors"][0]
    assert error["file"].endswith("cloudsync.yaml") and error["line"] == 11 and error["hint"]
    assert "unknown principal" in error["message"]
    assert "unknown principal" in result.stderr  # the job log still gets the diagnostics


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_markdown_failure_is_an_error_block_under_the_stack_marker(
        command: str, cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    stack = write_stack(BROKEN)
    result = cli(command, "-C", str(stack), "--format", "markdown")
    assert result.code == 1
    assert result.stdout.startswith(f"<!-- cloudsync:{command} stack=stack -->\n")
    assert f"### {command.capitalize()} error: `stack`" in result.stdout
    assert "cloudsync.yaml:11" in result.stdout and "hint:" in result.stdout
    # The principal's name comes from the file: it must not become HTML or break a table.
    assert "<b>" not in result.stdout and "&#60;b&#62;ap&#124;i&#42;&#95;" in result.stdout


def test_text_failure_prints_nothing_to_stdout(cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    result = cli("plan", "-C", str(write_stack(BROKEN)))
    assert result.code == 1 and result.stdout == "" and "unknown principal" in result.stderr


def test_a_provider_failure_is_reported_without_the_value(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = write_stack(BROKEN.replace('readers: ["<b>ap|i*_</b>"]', "readers: [api]")
                        .replace("{provider: local}", "{provider: local, path: store/local.db}"))
    (stack / "store").mkdir()
    (stack / "store" / "local.db").write_bytes(b"not a database, " * 64)  # the files are fine, the store is not
    result = cli("plan", "-C", str(stack), "--format", "json", env={"APP_TOKEN": canary})
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["stack"] == "broken" and "local.db is damaged" in report["errors"][0]["message"]
    assert_no_canary(canary, result.stdout, result.stderr)

"""Habits users bring from Terraform, Typer and Rich, checked through the installed command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CLI, CliResult

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
  local-two: {provider: local, path: .cloudsync/two.db}
defaults:
  labels: {owner: team-shop}
  rotation: 30d
secrets:
  - {name: shop/api-key, targets: [local], value: {generate: {length: 40}}}
"""

COMMANDS = ["validate", "schema", "plan", "apply", "force-unlock", "show", "drift", "access", "import", "targets",
            "permissions", "policy check", "policy test", "policy schema"]


@pytest.fixture
def stack(write_stack: Callable[..., Path]) -> Path:
    return write_stack(STACK)


@pytest.mark.parametrize("command", ["", *COMMANDS, "policy"])
def test_dash_h_is_help_everywhere_with_readable_metavars(cli: Callable[..., CliResult], command: str) -> None:
    result = cli(*command.split(), "-h")
    assert result.code == 0, result.output
    assert result.stdout.startswith("Usage: cloudsync"), result.stdout
    assert "-h, --help" in result.stdout
    # no typer type labels, no {argument} placeholders: DIR, TARGET, FILE, N, DURATION
    assert not re.search(r"<(list\[|path|int|str|text>)|\{[a-z_]+\}", result.stdout), result.stdout


def test_top_level_summaries_are_whole_sentences(cli: Callable[..., CliResult]) -> None:
    summaries = help_commands(cli("--help").stdout)
    assert set(summaries) == {c.split()[0] for c in COMMANDS}
    for name, summary in summaries.items():
        assert summary.endswith(".") and "..." not in summary, (name, summary)


def test_shell_completion_is_offered_and_completes_commands(cli: Callable[..., CliResult]) -> None:
    assert "--install-completion" in cli("--help").stdout
    # --show-completion prints the script of the shell it runs in (found from the process tree,
    # so the test runs it from bash: under a pytest worker the parent may be no shell at all).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_") and k != "CI"}
    shown = subprocess.run(["bash", "-c", f'"{CLI}" --show-completion; exit $?'], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert shown.returncode == 0 and "_CLOUDSYNC_COMPLETE=complete_bash" in shown.stdout, shown.stderr
    # Another shell's script, as the README says: the completion variable names the shell.
    zsh = cli(env={"_CLOUDSYNC_COMPLETE": "source_zsh"})
    assert zsh.code == 0 and "compdef _cloudsync_completion cloudsync" in zsh.stdout
    completed = cli(env={"_CLOUDSYNC_COMPLETE": "complete_bash", "COMP_WORDS": "cloudsync pl", "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["plan"]
    options = cli(env={"_CLOUDSYNC_COMPLETE": "complete_bash", "COMP_WORDS": "cloudsync plan --for",
                       "COMP_CWORD": "2"})
    assert options.stdout.split() == ["--format"]


def test_global_options_work_after_the_subcommand_and_dir_before_it(cli: Callable[..., CliResult],
                                                                   stack: Path) -> None:
    after = cli("plan", "-C", str(stack), "-v")
    before = cli("-v", "plan", "-C", str(stack))
    assert after.code == before.code == 0
    assert "cloudsync: DEBUG: target local" in after.stderr and "cloudsync: DEBUG: target local" in before.stderr
    quiet = cli("plan", "-C", str(stack))
    assert "DEBUG" not in quiet.stderr
    chdir = cli("-C", str(stack), "targets")  # like terraform -chdir=DIR
    assert chdir.code == 0 and chdir.stdout.split()[:2] == ["local", "local"]


def test_no_color_removes_every_style_even_when_colour_is_forced(cli: Callable[..., CliResult],
                                                                 stack: Path) -> None:
    forced = {"NO_COLOR": "", "FORCE_COLOR": "1"}
    coloured = cli("plan", "-C", str(stack), env=forced)
    assert "\x1b[" in coloured.output  # FORCE_COLOR colours a pipe (documented)
    for args in (["plan", "-C", str(stack), "--no-color"], ["--no-color", "plan", "-C", str(stack)]):
        plain = cli(*args, env=forced)
        assert plain.code == 0 and "\x1b[" not in plain.output and "create" in plain.stdout
    # NO_COLOR takes the colours away (rich keeps bold and dim); --no-color takes every style away
    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")
    assert colour.search(coloured.output)
    assert not colour.search(cli("plan", "-C", str(stack), env={"NO_COLOR": "1", "FORCE_COLOR": "1"}).output)


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "--target", "locl"], "error: unknown target 'locl' (hint: did you mean 'local'?)"),
    (["drift", "-t", "local-tow"], "error: unknown target 'local-tow' (hint: did you mean 'local-two'?)"),
    (["import", "--target", "lcal"], "error: unknown target 'lcal' (hint: did you mean 'local'?)"),
    (["permissions", "--target", "lokal"], "error: unknown target 'lokal' (hint: did you mean 'local'?)"),
    (["targets", "--provider", "awz"], "error: unknown provider 'awz' (hint: did you mean 'aws'?)"),
    (["plan", "--format", "jsn"], "'jsn' is not one of 'text', 'json', 'markdown'. (did you mean 'json'?)"),
    (["policy", "check", "-f", "sarf"], "(did you mean 'sarif'?)"),
])
def test_typos_get_did_you_mean_and_exit_1(cli: Callable[..., CliResult], stack: Path, args: list[str],
                                           message: str) -> None:
    result = cli(*args, "-C", str(stack))
    assert result.code != 0 and message in result.stderr, result.stderr
    assert result.stdout == ""  # targets --provider awz used to print an empty CI matrix and exit 0


def test_apply_json_reports_each_change_outcome(cli: Callable[..., CliResult], stack: Path) -> None:
    refused = cli("apply", "--format", "json", "-C", str(stack))
    assert refused.code == 1 and json.loads(refused.stdout)["ok"] is False
    assert "--format json cannot ask for confirmation" in refused.stderr
    result = cli("apply", "--format", "json", "--auto-approve", "-C", str(stack))
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "complete" and data["ok"] is True
    assert data["changes"] == [{"address": "local:shop/api-key", "target": "local", "secret": "shop/api-key",
                                "action": "create", "reasons": ["value"], "outcome": "applied", "error": None,
                                "attempts": 1, "kind": None}]
    assert data["summary"] == {"applied": 1, "failed": 0, "not_attempted": 0}
    again = json.loads(cli("apply", "-f", "json", "--auto-approve", "-C", str(stack)).stdout)
    assert again["status"] == "nothing-to-apply" and again["changes"] == []


def test_apply_json_of_a_refused_apply_is_an_error_report(cli: Callable[..., CliResult],
                                                          write_stack: Callable[..., Path]) -> None:
    root = write_stack(STACK.replace("rotation: 30d", "rotation: 1y"))  # CS006 blocks it
    result = cli("apply", "--format", "json", "--auto-approve", "-C", str(root))
    assert result.code == 1
    data = json.loads(result.stdout)
    assert data["kind"] == "apply" and data["ok"] is False
    assert any("CS006" in e["message"] for e in data["errors"])


def test_import_and_permissions_speak_json(cli: Callable[..., CliResult], stack: Path) -> None:
    assert cli("apply", "--auto-approve", "-C", str(stack)).code == 0
    imported = cli("import", "--target", "local", "--format", "json", "-C", str(stack))
    assert imported.code == 0, imported.output
    data = json.loads(imported.stdout)
    assert data["kind"] == "import" and data["target"] == "local" and data["secrets"] == []
    perms = cli("permissions", "--target", "local", "--format", "json", "-C", str(stack))
    assert perms.code == 0, perms.output
    shape = json.loads(perms.stdout)
    assert shape["provider"] == "local" and set(shape["operations"]) == {"plan-metadata", "plan", "apply"}
    assert all(isinstance(a, str) for actions in shape["operations"].values() for a in actions)


def test_junit_counts_warnings_as_skipped_not_failed(cli: Callable[..., CliResult],
                                                     write_stack: Callable[..., Path]) -> None:
    root = write_stack(STACK.replace("shop/api-key", "Shop_Key"))  # CS009 (naming) is a warning
    result = cli("policy", "check", "--format", "junit", "-C", str(root))
    assert result.code == 0, result.output
    suites = ET.fromstring(result.stdout)
    assert suites.get("failures") == "0" and suites.get("skipped") == "1"
    case = next(c for c in suites.iter("testcase") if c.get("classname") == "cloudsync.policy.CS009")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == "1 warning of CS009 (not blocking)"


def test_policy_test_junit_names_files_by_stable_relative_names(cli: Callable[..., CliResult], stack: Path,
                                                                tmp_path: Path) -> None:
    tests = stack / "policies" / "tests"
    tests.mkdir(parents=True)
    (tests / "owners.yaml").write_text(
        "policies: [CS008]\ntests:\n  - {name: owned, input: {secret: {labels: {owner: a}}}, expect: []}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("policy", "test", "--format", "junit", "-C", str(stack), cwd=elsewhere)
    assert result.code == 0, result.output
    suites = ET.fromstring(result.stdout)
    names = {c.get("classname") for c in suites.iter("testcase")}
    assert "builtin/CS014" in names and "policies/tests/owners.yaml" in names
    for element in [*suites.iter("testcase"), *suites.iter("testsuite")]:
        for attr in ("classname", "name", "file"):
            value = element.get(attr) or ""
            assert not os.path.isabs(value) and "site-packages" not in value and str(tmp_path) not in value


def help_commands(text: str) -> dict[str, str]:
    """``Commands:`` of a help page: name -> summary (wrapped lines joined)."""
    rows: dict[str, str] = {}
    section = text.split("\nCommands:\n", 1)[1]
    name = ""
    for line in section.splitlines():
        match = re.match(r"^  (\S+)\s{2,}(.*)$", line)
        if match:
            name = match.group(1)
            rows[name] = match.group(2).strip()
        elif line.startswith("    ") and name:
            rows[name] += " " + line.strip()
    return rows

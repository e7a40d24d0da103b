"""What the README and docs say is what the installed command does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.keymaterial import MIN_KEY_CHARS
from cloudsync.providers.registry import all_rules
from tests.conftest import CliResult
from tests.e2e.test_cli_habits import help_commands

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local, labels: {env: dev}}
defaults:
  labels: {owner: team-shop}
  rotation: 30d
secrets:
  - {name: shop/api-key, targets: [local], value: {generate: {length: 40}}}
"""


def readme_commands() -> dict[str, str]:
    """The README's command table: command -> summary."""
    section = README.split("\n## Commands\n", 1)[1].split("\n### ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_the_readme_command_table_matches_help(cli: Callable[..., CliResult]) -> None:
    shown = help_commands(cli("--help").stdout)
    assert readme_commands() == shown


def test_the_walkthrough_activates_the_virtualenv_before_its_first_bare_cloudsync() -> None:
    walkthrough = README.split("## Walkthrough", 1)[1].split("\n## ", 1)[0]
    commands = [line[2:] for line in walkthrough.splitlines() if line.startswith("$ ")]
    first = next(i for i, c in enumerate(commands) if c.startswith("cloudsync "))
    assert ". .venv/bin/activate" in commands[:first]
    # and the install the README gives is what puts it there
    assert ".venv/bin/pip install" in README.split("## Two commands", 1)[1].split("\n## ", 1)[0]


def test_key_lengths_in_the_docs_are_the_ones_the_code_requires(cli: Callable[..., CliResult],
                                                                 write_stack: Callable[..., Path]) -> None:
    docs = [README, *(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md")),
            *(p.read_text(encoding="utf-8") for p in (ROOT / "examples").rglob("*.yml"))]
    stated = {int(n) for text in docs for line in text.splitlines() if "_KEY" in line
              for n in re.findall(r"(\d+)\+? (?:random )?characters", line)}
    assert stated == {MIN_KEY_CHARS}
    root = write_stack(STACK)
    short = cli("plan", "--out", "p.json", "-C", str(root), env={"CLOUDSYNC_PLAN_KEY": "k" * (MIN_KEY_CHARS - 1)})
    assert short.code == 1 and f"at least {MIN_KEY_CHARS} characters" in short.stderr
    enough = cli("plan", "--out", "p.json", "-C", str(root), env={"CLOUDSYNC_PLAN_KEY": "k" * MIN_KEY_CHARS})
    assert enough.code == 0, enough.output


def test_a_metadata_only_plan_file_is_not_offered_for_apply(cli: Callable[..., CliResult],
                                                           write_stack: Callable[..., Path]) -> None:
    root = write_stack(STACK)
    saved = cli("plan", "--metadata-only", "--out", "meta.json", "-C", str(root))
    assert saved.code == 0, saved.output
    assert "apply it with" not in saved.stderr
    assert "review it with: cloudsync show meta.json (it cannot be applied" in saved.stderr
    assert cli("show", "meta.json", "-C", str(root)).code == 0
    refused = cli("apply", "meta.json", "-C", str(root))
    assert refused.code == 1 and "metadata-only plan and cannot be applied" in refused.stderr
    full = cli("plan", "--out", "full.json", "-C", str(root))
    assert "apply it with: cloudsync apply full.json" in full.stderr


def test_show_outside_the_stack_folder_names_the_missing_dash_c(cli: Callable[..., CliResult],
                                                                write_stack: Callable[..., Path],
                                                                tmp_path: Path) -> None:
    root = write_stack(STACK)
    assert cli("plan", "--out", "plan.json", "-C", str(root), cwd=tmp_path).code == 0
    result = cli("show", "plan.json", cwd=tmp_path)
    assert result.code == 1
    assert "no cloudsync.yaml in .:" in result.stderr and "pass -C with the stack folder" in result.stderr
    assert "unknown key" not in result.stderr and "plan key" not in result.stderr
    assert cli("show", "plan.json", "-C", str(root), cwd=tmp_path).code == 0


@pytest.mark.parametrize("rules", all_rules(), ids=lambda r: r.kind)
def test_configuration_md_lists_every_target_key(rules: object) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    targets = text.split("### Targets", 1)[1].split("\n### ", 1)[0]
    model = rules.config_model  # type: ignore[attr-defined]
    keys = {info.alias or name for name, info in model.model_fields.items()} - {"provider"}
    assert "labels" in keys
    assert {k for k in keys if f"`{k}`" not in targets} == set()


def test_target_labels_are_accepted_and_reach_the_policies(cli: Callable[..., CliResult],
                                                           write_stack: Callable[..., Path]) -> None:
    # CS004 keeps prod secrets out of non-prod targets: the target is dev by its env label alone.
    root = write_stack(STACK.replace("value: {generate", "labels: {env: prod}, value: {generate"))
    result = cli("policy", "check", "-C", str(root))
    assert result.code == 1 and "CS004" in result.stdout, result.output

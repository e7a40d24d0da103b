"""A stack file written by an attacker ends in a diagnostic at file:line:col — never a crash or a hang.

Each case is a reproduction from issue 11: a few hundred bytes that crashed, hung or
exhausted memory before the stack loader held files to the bounds of
:mod:`cloudsync.config.limits`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.limits import MAX_DEPTH, MAX_DIAGNOSTICS_PER_FILE, MAX_FILES, MAX_MAPPING_KEYS, shown
from cloudsync.config.loader import load_stack
from tests.sandbox import run_bounded
from tests.unit.test_loader import only, problems

HEADER = """\
version: 1
stack: demo
targets:
  local: {provider: local}
"""

SECRET = """\
secrets:
  - name: app/db
    targets: [local]
    value: {generate: {length: 32}}
"""

# Under 600 bytes (the had 489): nine levels of nine aliases each, 9**9 (387 million) strings once expanded.
BILLION_LAUGHS = HEADER + "policy:\n  parameters:\n    CS001:\n" + "".join(
    f"      l{i}: &l{i} [" + ",".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(9))


# --- aliases -----------------------------------------------------------------------------------


RECURSIVE = HEADER + SECRET + "policy: {parameters: {CS001: {public_members: &r [*r]}}}\n"


def test_a_recursive_alias_is_a_diagnostic(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(RECURSIVE))
    assert (diag.line, diag.col) == (9, 51)
    assert "recursive alias" in diag.message and diag.hint


@pytest.mark.parametrize("command", [["plan", "--metadata-only"], ["policy", "check"], ["validate"]])
def test_a_recursive_alias_does_not_crash_the_cli(write_stack: Callable[..., Path], command: list[str]) -> None:
    """It killed plan and policy check with SIGSEGV (the policy engine recursed into it)."""
    result = run_bounded(*command, "-C", str(write_stack(RECURSIVE)))
    assert result.code == 1, result.output
    assert "cloudsync.yaml:9:51: error: alias *r refers to a node that contains it" in result.stderr
    assert "Traceback" not in result.output


def test_billion_laughs_is_refused_at_the_first_alias_past_the_budget(write_stack: Callable[..., Path]) -> None:
    assert len(BILLION_LAUGHS.encode()) < 600
    diag = only(write_stack(BILLION_LAUGHS))
    assert "aliases in this file expand to more than 100,000 nodes" in diag.message
    assert diag.line == 13 and diag.hint


def test_billion_laughs_through_the_cli_stays_small(write_stack: Callable[..., Path]) -> None:
    """It ran for minutes and exhausted memory; under a 1 GiB cap it is now one diagnostic."""
    result = run_bounded("plan", "--metadata-only", "-C", str(write_stack(BILLION_LAUGHS + SECRET)))
    assert result.code == 1, result.output
    assert "aliases in this file expand to more than" in result.stderr


def test_aliases_within_the_budget_are_still_read(write_stack: Callable[..., Path]) -> None:
    stack = load_stack(write_stack(HEADER + """\
defaults:
  labels: &team {owner: team-a}
secrets:
  - name: app/db
    targets: [local]
    labels: *team
    value: {generate: {length: 32}}
"""))
    assert stack.secrets[0].decl.labels == {"owner": "team-a"}


def test_an_alias_of_a_finished_node_of_the_same_name_is_not_recursive(write_stack: Callable[..., Path]) -> None:
    """YAML lets an anchor be redefined: the alias names the latest complete definition."""
    stack = load_stack(write_stack(HEADER + "defaults: {readers: &a [&a app, *a]}\nprincipals: {app: {}}\n"))
    assert stack.config.defaults.readers == ["app", "app"]


# --- size, depth, keys -------------------------------------------------------------------------


def test_nesting_deeper_than_the_limit(write_stack: Callable[..., Path]) -> None:
    deep = "[" * (MAX_DEPTH + 10) + "]" * (MAX_DEPTH + 10)
    diag = only(write_stack(HEADER + f"policy: {{parameters: {{CS001: {{x: {deep}}}}}}}\n"))
    assert f"nesting deeper than {MAX_DEPTH} levels" in diag.message and diag.line == 5


def test_nesting_through_aliases_counts_too(write_stack: Callable[..., Path]) -> None:
    half = MAX_DEPTH // 2 + 2
    diag = only(write_stack(HEADER + "a: &d " + "[" * half + "]" * half + "\nb: " + "[" * half + "*d" + "]" * half + "\n"))
    assert f"nests deeper than {MAX_DEPTH} levels" in diag.message and diag.line == 6


def test_too_many_keys_in_one_mapping(write_stack: Callable[..., Path]) -> None:
    keys = "".join(f"  k{i}: {{}}\n" for i in range(MAX_MAPPING_KEYS + 5))
    diag = only(write_stack(HEADER + "principals:\n" + keys))
    assert f"more than {MAX_MAPPING_KEYS:,} keys in one mapping" in diag.message
    assert diag.line == 6 + MAX_MAPPING_KEYS


def test_thousands_of_unknown_keys_give_a_bounded_report(write_stack: Callable[..., Path]) -> None:
    """20,000 unknown keys took 16 s (a fuzzy-matched hint for each); now the first few and a count."""
    found = problems(write_stack(HEADER + "".join(f"zz{i}: 1\n" for i in range(9000))))
    assert len(found) == MAX_DIAGNOSTICS_PER_FILE + 1
    assert found[0].message == "unknown key 'zz0'" and found[0].line == 5
    assert found[-1].message == f"{9000 - MAX_DIAGNOSTICS_PER_FILE} more problems in this file are not shown"


def test_a_file_larger_than_the_cap(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER)
    (folder / "secrets").mkdir()
    (folder / "secrets" / "big.yaml").write_bytes(b"# " + b"x" * (8 * 1024 * 1024) + b"\n")
    diag = only(folder)
    assert diag.file is not None and diag.file.endswith("big.yaml")
    assert "is larger than 8 MiB" in diag.message


def test_too_many_secrets_files(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER, {f"secrets/f{i:04d}.yaml": "secrets: []\n" for i in range(MAX_FILES + 1)})
    diag = only(folder)
    assert f"more than {MAX_FILES} files in" in diag.message and diag.hint


def test_huge_input_is_shown_bounded(write_stack: Callable[..., Path]) -> None:
    """A 60 kB stack name is quoted in a message as a few dozen characters, not in full."""
    diag = only(write_stack(HEADER.replace("stack: demo", "stack: " + "A" * 60_000)))
    assert diag.line == 2 and len(diag.message) < 300 and "must match" in diag.message


def test_a_value_longer_than_the_cap(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(HEADER.replace("stack: demo", "stack: " + "A" * 1_000_000)))
    assert (diag.line, diag.col) == (2, 8) and diag.message == "a value longer than 64 KiB"


def test_shown_is_bounded_and_escapes_control_characters() -> None:
    nested: list[object] = []
    nested.append(nested)
    assert len(shown("x" * 10**6)) < 100
    assert shown("\x1b[2J\n") == "'\\x1b[2J\\n'"
    assert len(shown(nested)) < 100
    assert shown(16**5000) == "<int>"  # past Python's int-to-text limit: repr() itself would raise


# --- internal errors that are now diagnostics --------------------------------------------------


@pytest.mark.parametrize(("line", "message"), [
    ("zz: !!bool maybe", "cannot read 'maybe' as !!bool"),  # was KeyError
    ("zz: !!int 12x", "cannot read '12x' as !!int"),
    ("zz: 0x" + "f" * 40, "integer out of range"),
    ("zz: !!binary aGVsbG8=", "unknown tag !!binary"),
    ("zz: !!python/name:os.system x", "unknown tag !!python/name:os.system"),
    ("zz: !Ref other", "unknown tag !Ref"),
    ('zz: "a\\0b"', "a NUL character in a value"),
])
def test_bad_scalars(write_stack: Callable[..., Path], line: str, message: str) -> None:
    found = problems(write_stack(HEADER + line + "\n"))
    assert found[0].message == message and (found[0].line, found[0].col) == (5, 5), [d.render() for d in found]


@pytest.mark.parametrize("text", [
    "targets: !!omap [{local: {provider: local}}]",
    "targets: !!set {local}",
    "targets: !custom {local: {provider: local}}",
    "targets: {local: !Target {provider: local}}",
    "defaults: {readers: !list []}",
])
def test_tags_on_mappings_and_sequences_are_refused(write_stack: Callable[..., Path], text: str) -> None:
    """They were silently ignored: `!custom {…}` loaded as the plain mapping."""
    found = problems(write_stack("version: 1\nstack: demo\n" + text + "\n"))
    assert any(d.message.startswith("unknown tag") and d.line == 3 for d in found), [d.render() for d in found]


def test_a_nul_in_a_local_path_is_a_diagnostic(write_stack: Callable[..., Path]) -> None:
    """`path: "a\\0b"` was a ValueError deep in plan."""
    diag = only(write_stack('version: 1\nstack: demo\ntargets: {local: {provider: local, path: "a\\0b"}}\n'))
    assert diag.message == "a NUL character in a value" and (diag.line, diag.col) == (3, 42)


@pytest.mark.parametrize("path", ["a\\x1bb", "a\\nb"])
def test_control_characters_in_paths(write_stack: Callable[..., Path], path: str) -> None:
    diag = only(write_stack(HEADER + SECRET.replace("{generate: {length: 32}}", f'{{file: "{path}"}}')))
    assert "a path cannot hold control characters" in diag.message and diag.line == 8
    assert "\x1b" not in diag.render() and "\n" not in diag.render()

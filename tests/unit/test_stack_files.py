"""Files are read only from inside the stack folder (symlinks resolved), regular files only, bounded.

git stores symlinks, so a pull request can point ``secrets/x.yaml`` at ``/dev/zero`` or a
value file at ``/proc/self/environ``. Each is refused at ``validate`` — on the files
alone, before anything is read — and again by the reader itself at ``plan``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.files import FileRefused, FileScope
from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.values.sources import ResolveContext, resolve
from tests.conftest import CliResult
from tests.sandbox import run_bounded
from tests.unit.test_loader import only, problems

HEADER = """\
version: 1
stack: demo
targets:
  local: {provider: local}
"""


def with_value(value: str, extra: str = "") -> str:
    return HEADER + extra + f"""\
secrets:
  - name: app/token
    targets: [local]
    value: {value}
"""


# --- value files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../../etc/hostname", "/proc/self/environ", "/etc/passwd", "/dev/zero"])
def test_a_value_file_outside_the_stack_is_refused_at_validate(write_stack: Callable[..., Path], path: str) -> None:
    diag = only(write_stack(with_value(f"{{file: {path}}}")))
    assert (diag.line, diag.col) == (8, 19)
    assert f"value file {path} resolves to" in diag.message and "outside the stack folder" in diag.message
    assert diag.hint is not None and "files: {allow: [DIR]}" in diag.hint


def test_validate_through_the_cli_refuses_it(write_stack: Callable[..., Path], cli: Callable[..., CliResult]) -> None:
    result = cli("validate", "-C", str(write_stack(with_value("{file: /proc/self/environ}"))))
    assert result.code == 1
    assert "cloudsync.yaml:8:19: error: value file /proc/self/environ resolves to /proc/" in result.stderr
    assert "outside the stack folder" in result.stderr
    assert "PATH=" not in result.output  # nothing of the file was read


def test_a_symlink_out_of_the_stack_is_refused(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the stack's\n")
    folder = write_stack(with_value("{file: token.txt}"))
    (folder / "token.txt").symlink_to(outside)
    diag = only(folder)
    assert "value file token.txt resolves to" in diag.message and "elsewhere.txt" in diag.message


def test_a_symlink_inside_the_stack_is_fine(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(with_value("{file: token.txt}"), {"out/real.txt": "value\n"})
    (folder / "token.txt").symlink_to(folder / "out" / "real.txt")
    load_stack(folder)


def test_a_fifo_is_refused_without_blocking(write_stack: Callable[..., Path]) -> None:
    """Opening a FIFO for reading waits for a writer: it must be refused before that."""
    folder = write_stack(with_value("{file: pipe}"))
    os.mkfifo(folder / "pipe")
    result = run_bounded("plan", "-C", str(folder), timeout=30)
    assert result.code == 1 and not result.timed_out
    assert "cloudsync.yaml:8:19: error: value file pipe is not a regular file" in result.stderr
    with pytest.raises(FileRefused, match="not a regular file"):
        FileScope.of(folder).read_bytes("pipe", limit=100)


def test_a_value_file_larger_than_any_cloud_takes(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(with_value("{file: big.bin}"))
    (folder / "big.bin").write_bytes(b"x" * (64 * 1024 + 1))
    assert "value file big.bin is larger than 64 KiB" in only(folder).message


def test_a_missing_value_file_passes_validate(write_stack: Callable[..., Path]) -> None:
    """An earlier job of the pipeline may write it; plan reports it missing."""
    load_stack(write_stack(with_value("{file: out/token.txt}")))


def test_the_reader_refuses_a_path_swapped_after_validate(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    """validate passed on a missing file; a symlink out of the stack appears before plan reads it."""
    outside = tmp_path / "host-secret.txt"
    outside.write_text("host\n")
    folder = write_stack(with_value("{file: out/token.txt}"))
    stack = load_stack(folder)
    (folder / "out").mkdir()
    (folder / "out" / "token.txt").symlink_to(outside)
    decl = stack.secrets[0]
    with pytest.raises(CloudsyncError) as info:
        resolve(decl, ResolveContext(root=folder))
    assert "outside the stack folder" in info.value.diagnostics[0].message
    assert info.value.diagnostics[0].line == 8


# --- allowed directories -------------------------------------------------------------------------


def test_files_allow_names_a_directory_outside(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    mounted = tmp_path / "run-secrets"
    mounted.mkdir()
    (mounted / "token").write_bytes(b"from the CI mount\n")
    folder = write_stack(with_value(f"{{file: {mounted}/token}}", extra=f"files: {{allow: [{mounted}]}}\n"))
    stack = load_stack(folder)
    value = resolve(stack.secrets[0], ResolveContext(root=folder))
    assert value.reveal() == b"from the CI mount\n"


def test_files_allow_does_not_reach_beyond_its_directory(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    mounted = tmp_path / "run-secrets"
    mounted.mkdir()
    folder = write_stack(with_value(f"{{file: {mounted}/../other}}", extra=f"files: {{allow: [{mounted}]}}\n"))
    assert "outside the stack folder" in only(folder).message


@pytest.mark.parametrize("entry", ["/", "/proc", "/dev/shm", "../../../../../../../.."])
def test_files_allow_cannot_open_everything(write_stack: Callable[..., Path], entry: str) -> None:
    diag = only(write_stack(HEADER + f"files: {{allow: [{entry}]}}\n"))
    assert diag.message.startswith(f"files.allow cannot name {entry}") and diag.line == 5


# --- declaration and policy files ----------------------------------------------------------------


def test_a_secrets_file_linked_to_dev_zero_is_refused(write_stack: Callable[..., Path]) -> None:
    """It exhausted memory: the loader read /dev/zero until the machine ran out."""
    folder = write_stack(HEADER)
    (folder / "secrets").mkdir()
    (folder / "secrets" / "x.yaml").symlink_to("/dev/zero")
    result = run_bounded("validate", "-C", str(folder), timeout=30)
    assert result.code == 1 and result.signal is None, result.output
    assert "secrets/x.yaml: error: file " in result.stderr
    assert "resolves to /dev/zero, outside the stack folder" in result.stderr


def test_a_secrets_file_that_is_a_fifo(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER)
    (folder / "secrets").mkdir()
    os.mkfifo(folder / "secrets" / "x.yaml")
    result = run_bounded("validate", "-C", str(folder), timeout=30)
    assert result.code == 1 and not result.timed_out
    assert "is not a regular file" in result.stderr


def test_a_secrets_folder_linked_out_of_the_stack(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.yaml").write_text("secrets: []\n")
    folder = write_stack(HEADER)
    (folder / "secrets").symlink_to(elsewhere)
    assert "outside the stack folder" in only(folder).message


def test_cloudsync_yaml_linked_out_of_the_stack(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text(HEADER)
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "cloudsync.yaml").symlink_to(tmp_path / "real.yaml")
    assert "outside the stack folder" in only(folder).message


def test_a_policy_file_linked_to_dev_zero_is_refused_at_validate(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(HEADER)
    (folder / "policies").mkdir()
    (folder / "policies" / "x.yaml").symlink_to("/dev/zero")
    result = run_bounded("validate", "-C", str(folder), timeout=30)
    assert result.code == 1
    assert "policies/x.yaml: error: policy file" in result.stderr and "outside the stack folder" in result.stderr
    result = run_bounded("policy", "check", "-C", str(folder), timeout=30)
    assert result.code == 1 and "outside the stack folder" in result.stderr and "Traceback" not in result.output


def test_a_policy_folder_outside_the_stack(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(HEADER + "policy: {dirs: [../../etc]}\n"))
    assert "policy folder ../../etc resolves to" in diag.message and diag.line == 5


# --- local store and sops files ------------------------------------------------------------------


def test_a_local_store_outside_the_stack(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack("version: 1\nstack: demo\ntargets: {local: {provider: local, path: /tmp/x.db}}\n"))
    assert "path /tmp/x.db resolves to" in diag.message and (diag.line, diag.col) == (3, 42)


def test_a_local_store_that_is_a_device(write_stack: Callable[..., Path]) -> None:
    folder = write_stack("version: 1\nstack: demo\ntargets: {local: {provider: local, path: store.db}}\n")
    os.mkfifo(folder / "store.db")
    assert "path store.db is not a regular file" in only(folder).message


def test_a_sops_file_outside_the_stack(write_stack: Callable[..., Path]) -> None:
    diag = only(write_stack(with_value("{sops: /etc/passwd, key: a}")))
    assert "sops file /etc/passwd resolves to" in diag.message and diag.line == 8


def test_the_sops_reader_refuses_a_swapped_path(write_stack: Callable[..., Path], tmp_path: Path) -> None:
    folder = write_stack(with_value("{sops: v.enc.yaml, key: a}"))
    stack = load_stack(folder)
    (tmp_path / "other.enc.yaml").write_text("a: 1\nsops: {}\n")
    (folder / "v.enc.yaml").symlink_to(tmp_path / "other.enc.yaml")
    with pytest.raises(CloudsyncError) as info:
        resolve(stack.secrets[0], ResolveContext(root=folder))
    assert "sops file v.enc.yaml resolves to" in info.value.diagnostics[0].message
    assert "outside the stack folder" in info.value.diagnostics[0].message


def test_symlink_loops_are_diagnostics(write_stack: Callable[..., Path]) -> None:
    """Path.resolve() raises RuntimeError on a loop: it was an internal error."""
    folder = write_stack(with_value("{file: loop}"))
    (folder / "loop").symlink_to("loop")
    (folder / "secrets").mkdir()
    (folder / "secrets" / "y.yaml").symlink_to("y.yaml")
    found = [d.message for d in problems(folder)]
    assert len(found) == 2
    assert found[0].startswith("cannot read file ") and found[0].endswith("y.yaml: Too many levels of symbolic links")
    assert found[1] == "cannot read value file loop: Too many levels of symbolic links"
    with pytest.raises(CloudsyncError, match="Too many levels of symbolic links"):
        resolve(load_stack(write_stack(with_value("{sops: loop, key: a}"))).secrets[0],
                                ResolveContext(root=folder))

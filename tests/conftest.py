"""Fixtures shared by every test: canaries, stack folders, the CLI in a subprocess."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# The fuzz suite's figures (cases tried per test), reported at the end of every run.
pytest_plugins = ("tests.fuzz.figures",)

CLI = shutil.which("cloudsync", path=os.path.dirname(sys.executable)) or "cloudsync"


@pytest.fixture
def canary() -> str:
    """A unique value that must never appear in any output, log or file but the stores."""
    return f"canary-{secrets.token_hex(12)}"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run the installed ``cloudsync`` in a subprocess (no terminal, like CI)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            input: str | None = None) -> CliResult:
        # CI=true changes the rules for saved plans; a test that means it passes it in `env`,
        # so the suite behaves the same on a laptop and in CI.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_") and k != "CI"}
        full_env.update({"NO_COLOR": "1", "COLUMNS": "200"})
        full_env.update(env or {})
        proc = subprocess.run([CLI, *args], cwd=cwd or tmp_path, env=full_env, capture_output=True, text=True,
                              input=input, timeout=300, check=False)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """Write a stack folder: ``write_stack(cloudsync_yaml, {"secrets/x.yaml": text})``."""

    def write(config: str, files: dict[str, str] | None = None, root: Path | None = None) -> Path:
        folder = root or tmp_path / "stack"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cloudsync.yaml").write_text(textwrap.dedent(config))
        for name, text in (files or {}).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return folder

    return write


def assert_no_canary(canary: str, *texts: str) -> None:
    for text in texts:
        assert canary not in text, "a secret value leaked into output"


def files_containing(root: Path, needle: str, *, skip: Callable[[Path], bool] = lambda p: False) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle`` (for leak checks)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not skip(path) and needle.encode() in path.read_bytes():
            found.append(path)
    return found


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("CLOUDSYNC_"):
            monkeypatch.delenv(key)
    yield

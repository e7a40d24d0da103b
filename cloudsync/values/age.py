"""age identities, found where the ``sops`` tool finds them, and the data key they unwrap.

Like sops, every location is used at once: ``SOPS_AGE_KEY`` (the keys themselves),
``SOPS_AGE_KEY_FILE``, ``SOPS_AGE_KEY_CMD`` (a command that prints keys), the user's
``sops/age/keys.txt`` (``$XDG_CONFIG_HOME`` or ``~/.config``; on macOS also
``~/Library/Application Support``), and SSH keys (``SOPS_AGE_SSH_PRIVATE_KEY_FILE``, else
``~/.ssh/id_ed25519`` and ``~/.ssh/id_rsa``). Problems with a location are remembered as
notes for the diagnostic; an identity is never printed (``str()`` of one is the key).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_ENV = "SOPS_AGE_KEY"
KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"
KEY_CMD_ENV = "SOPS_AGE_KEY_CMD"
SSH_KEY_ENV = "SOPS_AGE_SSH_PRIVATE_KEY_FILE"
USER_KEYS = Path("sops") / "age" / "keys.txt"
CMD_TIMEOUT = 30


class AgeUnavailable(Exception):
    """pyrage is not installed."""


@dataclass
class Identities:
    """The age identities found, and what was looked at (for diagnostics)."""

    keys: list[Any] = field(default_factory=list)  # pyrage identities; never printed
    looked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    plugins: int = 0  # AGE-PLUGIN-… identities: only the sops binary can use them

    def summary(self) -> str:
        text = f"looked in {', '.join(self.looked)}"
        if self.problems:
            text += "; " + "; ".join(self.problems)
        return text


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise AgeUnavailable from None
    return pyrage


def _user_config_dirs() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return [Path(xdg)]
    home = Path.home()
    dirs = [home / ".config"]
    if sys.platform == "darwin":
        dirs.append(home / "Library" / "Application Support")
    return dirs


def find_identities() -> Identities:
    """Every age identity available to this process, as the sops tool looks for them."""
    pyrage = _pyrage()
    found = Identities()

    def add_text(text: str, origin: str) -> None:
        before = len(found.keys)
        bad = 0
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("AGE-PLUGIN-"):
                found.plugins += 1
                continue
            try:
                found.keys.append(pyrage.x25519.Identity.from_str(line))
            except Exception:  # noqa: BLE001 - pyrage raises several types; the line itself is never shown
                bad += 1
        if bad:
            found.problems.append(f"{origin}: {bad} line(s) are not age secret keys")
        elif len(found.keys) == before and not found.plugins:
            found.problems.append(f"{origin}: no age secret key in it")

    def add_file(path: Path, origin: str, *, required: bool) -> None:
        try:
            add_text(path.read_text(encoding="utf-8"), origin)
        except FileNotFoundError:
            if required:
                found.problems.append(f"{origin}: file {path} does not exist")
        except (OSError, UnicodeDecodeError) as exc:
            found.problems.append(f"{origin}: cannot read {path} ({exc.__class__.__name__})")

    ssh_file = os.environ.get(SSH_KEY_ENV)
    ssh_paths = [(Path(ssh_file), SSH_KEY_ENV, True)] if ssh_file else [
        (Path.home() / ".ssh" / name, f"~/.ssh/{name}", False) for name in ("id_ed25519", "id_rsa")]
    for path, origin, required in ssh_paths:
        found.looked.append(origin)
        _add_ssh(pyrage, path, origin, found, required=required)
    if os.environ.get(KEY_ENV):
        found.looked.append(KEY_ENV)
        add_text(os.environ[KEY_ENV], KEY_ENV)
    if os.environ.get(KEY_FILE_ENV):
        found.looked.append(KEY_FILE_ENV)
        add_file(Path(os.environ[KEY_FILE_ENV]), KEY_FILE_ENV, required=True)
    if os.environ.get(KEY_CMD_ENV):
        found.looked.append(KEY_CMD_ENV)
        _add_command(os.environ[KEY_CMD_ENV], found, add_text)
    for folder in _user_config_dirs():
        path = folder / USER_KEYS
        found.looked.append(str(path))
        add_file(path, str(path), required=False)
    return found


def _add_ssh(pyrage: Any, path: Path, origin: str, found: Identities, *, required: bool) -> None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            found.problems.append(f"{origin}: file {path} does not exist")
        return
    except OSError as exc:
        found.problems.append(f"{origin}: cannot read {path} ({exc.__class__.__name__})")
        return
    try:
        found.keys.append(pyrage.ssh.Identity.from_buffer(data))
    except Exception:  # noqa: BLE001 - e.g. a passphrase-protected key
        found.problems.append(f"{origin}: not an unencrypted ssh-ed25519 or ssh-rsa key")


def _add_command(command: str, found: Identities, add_text: Callable[[str, str], None]) -> None:
    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False)  # noqa: S603
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        found.problems.append(f"{KEY_CMD_ENV}: the command could not run ({exc.__class__.__name__})")
        return
    if proc.returncode != 0:
        found.problems.append(f"{KEY_CMD_ENV}: the command exited with status {proc.returncode}")
        return
    add_text(proc.stdout, KEY_CMD_ENV)


def unwrap_data_key(stanzas: Sequence[str], identities: Identities) -> bytes | None:
    """The file's data key, from the first age stanza one of the identities opens."""
    if not identities.keys:
        return None
    pyrage = _pyrage()
    for enc in stanzas:
        try:
            key: bytes = pyrage.decrypt(enc.encode("ascii"), identities.keys)
        except Exception:  # noqa: BLE001,S112 - not for us (or malformed): try the next recipient
            continue
        if len(key) == 32:
            return key
    return None

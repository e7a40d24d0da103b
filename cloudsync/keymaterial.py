"""cloudsync's own keys (plan signing, fingerprints, the local store): one minimum length, private files.

Every key cloudsync accepts from the environment (``CLOUDSYNC_PLAN_KEY``,
``CLOUDSYNC_FINGERPRINT_KEY``, ``CLOUDSYNC_LOCAL_KEY``) needs at least
:data:`MIN_KEY_CHARS` characters; an empty variable counts as unset, because CI systems
pass a secret that is not configured as an empty string. Key files are the ones cloudsync
writes itself (32 random bytes, urlsafe base64, mode 0600) and are refused when they are
readable by anyone but their owner, are not regular files, or hold anything else — a
stack folder comes from a pull request, and git can store a symlink to ``/dev/null``.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

MIN_KEY_CHARS = 32
KEY_FILE_BYTES = 32
_KEY_FILE_MAX = 256  # a key file is ~45 bytes; never read more than this
GENERATE_HINT = "generate one with `openssl rand -base64 32`"


class KeyProblem(Exception):
    """A key that must not be used; the caller turns it into its own kind of error."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def env_key(name: str) -> bytes | None:
    """The key in environment variable ``name``; None when unset or empty; refused when short."""
    raw = os.environ.get(name)
    if not raw:
        return None
    if len(raw) < MIN_KEY_CHARS:
        # The length of the refused key is not shown: it is still a fact about a secret.
        raise KeyProblem(f"{name} is too short: a key needs at least {MIN_KEY_CHARS} characters",
                         hint=GENERATE_HINT)
    return raw.encode("utf-8")


def env_key_state(name: str) -> str:
    """How ``name`` is unset, for messages: "is not set" or "is empty"."""
    return "is empty" if name in os.environ else "is not set"


def read_key_file(path: Path, *, fix: str) -> bytes:
    """The key held by a key file cloudsync wrote; ``fix`` is the hint for a file holding no key."""
    try:
        # O_NONBLOCK: a FIFO planted in place of the key must not hang the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise KeyProblem(f"cannot read the key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyProblem(f"the key file {path} is not a regular file", hint=fix)
        mode = info.st_mode & 0o777
        if mode & 0o077:
            raise KeyProblem(f"the key file {path} is readable by other users (mode {mode:o})",
                             hint=f"chmod 600 {path}")
        data = handle.read(_KEY_FILE_MAX + 1)
    try:
        key = base64.b64decode(data.strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(data) > _KEY_FILE_MAX or len(key) != KEY_FILE_BYTES:
        raise KeyProblem(f"the key file {path} holds no key (cloudsync writes {KEY_FILE_BYTES} random bytes "
                         "in urlsafe base64 there)", hint=fix)
    return key


def create_key_file(path: Path) -> bytes | None:
    """Write a new random key to ``path`` (mode 0600) unless a file is there; None when one is.

    The key is written to a private temporary file and linked into place, so another process
    never sees a half-written key and an existing key is never replaced.
    """
    key = os.urandom(KEY_FILE_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.urlsafe_b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return None
    finally:
        tmp.unlink()
    return key


def key_file(path: Path, *, fix: str) -> bytes:
    """The key in ``path``, created on first use."""
    if not path.exists() and not path.is_symlink():
        created = create_key_file(path)
        if created is not None:
            return created
    return read_key_file(path, fix=fix)

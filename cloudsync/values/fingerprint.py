"""Keyed fingerprints of values: HMAC-SHA256, never an unkeyed hash.

The key comes from ``CLOUDSYNC_FINGERPRINT_KEY`` when set (shared by every target and job);
otherwise each target keeps its own random key as a cloudsync-managed secret inside the
target (see :mod:`cloudsync.providers.base`), readable only by identities that may read
values. A fingerprint is stored with the id of its key, so a key change is recognised.
Like every key cloudsync takes, the variable needs at least 32 characters
(:data:`cloudsync.keymaterial.MIN_KEY_CHARS`); an empty one counts as unset.
"""

from __future__ import annotations

import hashlib
import hmac

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.keymaterial import MIN_KEY_CHARS, KeyProblem, env_key
from cloudsync.values.secret import SecretValue

ENV_KEY = "CLOUDSYNC_FINGERPRINT_KEY"
FINGERPRINT_HEX = 32  # 128 bits: short enough for every cloud's label value limits


class Fingerprinter:
    """Computes fingerprints under one key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_CHARS:  # a target's own key is 64 random hex digits: this one was edited
            raise CloudsyncError(Diagnostic(
                f"a fingerprint key of fewer than {MIN_KEY_CHARS} bytes is refused",
                hint=f"set {ENV_KEY}, or restore the target's managed secret cloudsync-fingerprint-key-<stack>"))
        self._key = key
        self.key_id = hmac.new(key, b"cloudsync fingerprint key id", hashlib.sha256).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Fingerprinter(key_id={self.key_id})"

    def of(self, value: SecretValue) -> str:
        return hmac.new(self._key, value.reveal(), hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]


def key_from_env() -> bytes | None:
    """``CLOUDSYNC_FINGERPRINT_KEY``; None when unset or empty; a diagnostic when too short."""
    try:
        return env_key(ENV_KEY)
    except KeyProblem as problem:
        raise CloudsyncError(Diagnostic(problem.message, hint=problem.hint)) from None


def short(fingerprint: str | None) -> str:
    """The form shown to people: 8 hex digits."""
    return fingerprint[:8] if fingerprint else "-"

"""Keyed fingerprints of values: HMAC-SHA256, never an unkeyed hash.

The key comes from ``CLOUDSYNC_FINGERPRINT_KEY`` when set (shared by every target and job);
otherwise each target keeps its own random key as a cloudsync-managed secret inside the
target (see :mod:`cloudsync.providers.base`), readable only by identities that may read
values. A fingerprint is stored with the id of its key, so a key change is recognised.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cloudsync.values.secret import SecretValue

ENV_KEY = "CLOUDSYNC_FINGERPRINT_KEY"
FINGERPRINT_HEX = 32  # 128 bits: short enough for every cloud's label value limits


class Fingerprinter:
    """Computes fingerprints under one key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a fingerprint key needs at least 16 bytes")
        self._key = key
        self.key_id = hmac.new(key, b"cloudsync fingerprint key id", hashlib.sha256).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Fingerprinter(key_id={self.key_id})"

    def of(self, value: SecretValue) -> str:
        return hmac.new(self._key, value.reveal(), hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]


def key_from_env() -> bytes | None:
    raw = os.environ.get(ENV_KEY)
    if not raw:
        return None
    data = raw.encode("utf-8")
    if len(data) < 16:
        raise ValueError(f"{ENV_KEY} must be at least 16 characters long")
    return data


def short(fingerprint: str | None) -> str:
    """The form shown to people: 8 hex digits."""
    return fingerprint[:8] if fingerprint else "-"

"""Field rules of Secret Manager as its API reference states them (labels, annotations,
aliases, payloads, IAM bindings); each violation is INVALID_ARGUMENT."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

import grpc

from tests.fakes.gcp.errors import FakeError

MAX_LABELS = 64
MAX_ALIASES = 50
MAX_ANNOTATIONS_BYTES = 16 * 1024
MAX_PAYLOAD_BYTES = 64 * 1024
_ANNOTATION_KEY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:", "domain:", "principal:", "principalSet:",
                    "deleted:", "projectOwner:", "projectEditor:", "projectViewer:")
_MEMBER_WORDS = ("allUsers", "allAuthenticatedUsers")


def _invalid(message: str) -> FakeError:
    return FakeError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _lower_or_other_letter(char: str) -> bool:
    return unicodedata.category(char) in ("Ll", "Lo")


def _label_char(char: str) -> bool:
    # [\p{Ll}\p{Lo}\p{N}_-] from the reference
    return _lower_or_other_letter(char) or unicodedata.category(char).startswith("N") or char in "_-"


def check_labels(labels: Mapping[str, str]) -> None:
    """Keys ``[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,62}``, values ``[...]{0,63}``, 64 labels, 128 bytes."""
    if len(labels) > MAX_LABELS:
        raise _invalid(f"A resource may have at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not (1 <= len(key) <= 63 and len(key.encode()) <= 128 and _lower_or_other_letter(key[0])
                and all(_label_char(c) for c in key)):
            raise _invalid(f"Invalid label key {key!r}")
        if not (len(value) <= 63 and len(value.encode()) <= 128 and all(_label_char(c) for c in value)):
            raise _invalid(f"Invalid value {value!r} for label {key!r}")


def check_annotations(annotations: Mapping[str, str]) -> None:
    """Keys 1-63 chars, alphanumeric at both ends, ``._-`` inside; keys and values under 16 KiB."""
    total = 0
    for key, value in annotations.items():
        if len(key.encode()) > 128 or not _ANNOTATION_KEY_RE.match(key):
            raise _invalid(f"Invalid annotation key {key!r}")
        total += len(key.encode()) + len(value.encode())
    if total >= MAX_ANNOTATIONS_BYTES:
        raise _invalid("The total size of annotation keys and values must be less than 16KiB")


def check_aliases(aliases: Mapping[str, int], usable: Iterable[int]) -> None:
    """At most 50; ``[A-Za-z][A-Za-z0-9_-]{0,62}``; not ``latest``/``NEW``; each names a live version."""
    live = set(usable)
    if len(aliases) > MAX_ALIASES:
        raise _invalid(f"A secret may have at most {MAX_ALIASES} version aliases")
    for alias, number in aliases.items():
        if not _ALIAS_RE.match(alias) or alias in ("latest", "NEW"):
            raise _invalid(f"Invalid version alias {alias!r}")
        if number not in live:
            raise _invalid(f"Version alias {alias!r} refers to version {number}, which does not exist or is destroyed")


def check_payload_size(data: bytes) -> None:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise _invalid(f"Secret payload must be at most {MAX_PAYLOAD_BYTES} bytes")


def check_member(member: str) -> None:
    if member in _MEMBER_WORDS:
        return
    prefix = next((p for p in _MEMBER_PREFIXES if member.startswith(p)), None)
    if prefix is None or len(member) == len(prefix):
        raise _invalid(f"Invalid principal {member!r} in the policy")


def check_role(role: str) -> None:
    if not (role.startswith("roles/") or re.match(r"^(projects|organizations)/[^/]+/roles/[^/]+$", role)):
        raise _invalid(f"Role {role!r} is not supported for this resource")


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli), as ``SecretPayload.data_crc32c`` carries it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()

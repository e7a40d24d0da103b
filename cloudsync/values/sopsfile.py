"""The SOPS file format, decrypted natively: parse, decrypt every value, verify the MAC.

What the real ``sops`` tool does, checked against its output (see tests/values):

- The document is YAML or JSON with a top-level ``sops`` block (metadata, in clear).
- Each encrypted value is ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:str|int|float|bool|time]``:
  AES-256-GCM under the file's data key with a 32-byte IV, the additional data being the
  value's mapping-key path joined with ``:`` plus a trailing ``:`` (list indexes are not
  part of the path). Booleans are encrypted as ``True``/``False``.
- The MAC is SHA-512 over every leaf's bytes in document order (encrypted or not, with
  ``mac_only_encrypted`` only the encrypted ones after a ``sha256("sops")`` prefix; nulls
  and comments contribute nothing; booleans as ``True``/``False``, numbers in Go's ``%f``),
  as upper-case hex, itself encrypted with the data key using ``lastmodified`` as
  additional data.
- Which values are encrypted follows the file's ``unencrypted_suffix`` /
  ``encrypted_suffix`` / ``unencrypted_regex`` / ``encrypted_regex`` rule, applied to every
  key on the value's path.

Nothing here ever puts a value into a message: errors name the file's key paths only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloudsync.config.limits import MAX_DEPTH
from cloudsync.config.yamlsource import YamlError, check_limits
from cloudsync.values.secret import SecretValue

ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:([^,]*),iv:([^,]+),tag:([^,]+),type:([a-z]+)\]$")
OTHER_KEY_KINDS = ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "hckms")


class SopsFormatError(Exception):
    """The file is not a SOPS file cloudsync can read natively (no value in the message)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class AgeStanza:
    recipient: str
    enc: str


@dataclass(frozen=True)
class Metadata:
    """The ``sops`` block: who can open the data key, and how the file is protected."""

    age: tuple[AgeStanza, ...]
    other_kinds: tuple[str, ...]  # KMS, PGP, … master keys this file also has
    key_groups: bool  # Shamir key groups: only the sops binary combines them
    lastmodified: str
    mac: str
    mac_only_encrypted: bool = False
    unencrypted_suffix: str | None = None
    encrypted_suffix: str | None = None
    unencrypted_regex: str | None = None
    encrypted_regex: str | None = None


@dataclass(frozen=True)
class Leaf:
    """A decrypted scalar: its sops type and its text as ``sops decrypt --output-type json`` prints it."""

    kind: str  # str, int, float, bool, time, null
    value: SecretValue


@dataclass
class Document:
    """A decrypted SOPS file: nested dicts and lists whose scalars are :class:`Leaf`."""

    tree: Any
    source: str = "native"  # or "sops binary"
    notes: list[str] = field(default_factory=list)


# --- parsing ---------------------------------------------------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 core schema, as the Go YAML library sops uses resolves plain scalars.

    PyYAML follows YAML 1.1 (``yes`` is a boolean, ``017`` is octal); sops does not, and the
    MAC covers unencrypted values in their Go form, so resolution must match.
    """


_Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:timestamp",
     r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?"
     r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?)$", "0123456789"),
):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))


def _int12(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int12)


def parse(text: bytes, fmt: str) -> tuple[dict[str, Any], Metadata]:
    """The document without its ``sops`` block, and the block; raise SopsFormatError."""
    try:
        if fmt == "json":
            doc = json.loads(text)
            _check_depth(doc)
        else:
            _check_yaml_limits(text)
            docs = list(yaml.load_all(text, Loader=_Yaml12Loader))
            if len(docs) != 1:
                raise SopsFormatError(f"a {fmt} file with {len(docs)} documents",
                                      hint="keep one YAML document per SOPS file")
            doc = docs[0]
    except RecursionError:
        raise SopsFormatError(f"not valid {fmt}: nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise SopsFormatError(f"not valid {fmt}{at}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sops"), dict):
        raise SopsFormatError("no 'sops' metadata block: the file is not encrypted with sops",
                              hint="encrypt it with `sops encrypt --in-place FILE` (see docs/values.md)")
    block = doc.pop("sops")
    return doc, _metadata(block)


def _check_yaml_limits(text: bytes) -> None:
    """A SOPS file from a pull request gets the stack files' bounds (depth, alias expansion) before
    it is parsed: decrypting walks every node, so an alias bomb would expand there."""
    try:
        check_limits(text.decode("utf-8"), "sops file")
    except UnicodeDecodeError:
        raise SopsFormatError("not valid yaml: not UTF-8 text") from None
    except YamlError as exc:
        first = exc.diagnostics[0]
        raise SopsFormatError(f"not valid yaml at line {first.line}: {first.message}", hint=first.hint) from None


def _check_depth(doc: Any) -> None:
    """JSON has no aliases, but its nesting is bounded like YAML's (decryption recurses through it)."""
    level: list[Any] = [doc]
    for _ in range(MAX_DEPTH + 1):
        level = [v for node in level if isinstance(node, dict | list)
                 for v in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return
    raise SopsFormatError(f"not valid json: nested deeper than {MAX_DEPTH} levels")


def _metadata(block: dict[str, Any]) -> Metadata:
    def text(name: str) -> str | None:
        value = block.get(name)
        return value if isinstance(value, str) and value else None

    age = tuple(AgeStanza(str(s.get("recipient", "")), str(s.get("enc", "")))
                for s in block.get("age") or [] if isinstance(s, dict))
    lastmodified, mac = block.get("lastmodified"), text("mac")
    if isinstance(lastmodified, datetime):  # unquoted in hand-edited YAML
        lastmodified = _rfc3339(lastmodified)
    if not isinstance(lastmodified, str) or mac is None:
        raise SopsFormatError("the sops block has no 'lastmodified' or 'mac'",
                              hint="the file was not written by sops, or its metadata was edited")
    return Metadata(
        age=age, other_kinds=tuple(k for k in OTHER_KEY_KINDS if block.get(k)),
        key_groups=bool(block.get("key_groups")), lastmodified=lastmodified, mac=mac,
        mac_only_encrypted=str(block.get("mac_only_encrypted")).strip() in ("True", "true", "TRUE", "1", "t", "T"),
        unencrypted_suffix=text("unencrypted_suffix"), encrypted_suffix=text("encrypted_suffix"),
        unencrypted_regex=text("unencrypted_regex"), encrypted_regex=text("encrypted_regex"),
    )


# --- decryption ------------------------------------------------------------------------


def decrypt(doc: dict[str, Any], meta: Metadata, data_key: bytes) -> Document:
    """Decrypt every value and verify the file's MAC; raise SopsFormatError on any mismatch."""
    aead = AESGCM(data_key)
    digest = hashlib.sha512()
    if meta.mac_only_encrypted:
        # sops starts this MAC from sha256("sops"), so it never equals the full-document MAC.
        digest.update(hashlib.sha256(b"sops").digest())

    def visit(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            return {k: visit(v, [*path, str(k)]) for k, v in node.items()}
        if isinstance(node, list):
            return [visit(v, path) for v in node]
        encrypted = _is_encrypted(meta, path)
        leaf = _open(aead, node, path) if encrypted else _plain(node)
        if leaf.kind != "null" and (encrypted or not meta.mac_only_encrypted):
            digest.update(_mac_bytes(leaf))
        return leaf

    tree = visit(doc, [])
    _kind, stored = _decrypt_enc(aead, meta.mac, meta.lastmodified, "the MAC")
    if not hmac.compare_digest(stored.upper(), digest.hexdigest().upper().encode()):
        raise SopsFormatError(
            "the MAC does not match the content: the file was changed after sops encrypted it",
            hint="restore it from git; if the change is legitimate (e.g. a merge), re-encrypt it with sops "
                 "(`sops decrypt --ignore-mac` then `sops encrypt`)")
    return Document(tree=tree)


def _is_encrypted(meta: Metadata, path: Sequence[str]) -> bool:
    encrypted = True
    if meta.unencrypted_suffix and any(k.endswith(meta.unencrypted_suffix) for k in path):
        encrypted = False
    if meta.encrypted_suffix:
        encrypted = any(k.endswith(meta.encrypted_suffix) for k in path)
    if meta.unencrypted_regex and any(re.search(meta.unencrypted_regex, k) for k in path):
        encrypted = False
    if meta.encrypted_regex:
        encrypted = any(re.search(meta.encrypted_regex, k) for k in path)
    return encrypted


def _open(aead: AESGCM, node: Any, path: list[str]) -> Leaf:
    where = _display(path)
    if node is None:
        return Leaf("null", SecretValue(b""))
    if node == "":
        return Leaf("str", SecretValue(b""))
    if not isinstance(node, str):
        raise SopsFormatError(f"the value at {where} is not encrypted although the file's rules say it should be",
                              hint="the file was edited by hand; restore it from git")
    kind, data = _decrypt_enc(aead, node, ":".join(path) + ":", f"the value at {where}")
    if kind == "bool":
        return Leaf(kind, SecretValue(b"true" if data.lower() in (b"true", b"1", b"t") else b"false"))
    if kind == "float":
        try:
            return Leaf(kind, SecretValue(go_json_float(float(data))))
        except ValueError:
            raise SopsFormatError(f"the value at {where} is marked as a number but is not one") from None
    return Leaf(kind, SecretValue(data))


def _decrypt_enc(aead: AESGCM, text: str, aad: str, what: str) -> tuple[str, bytes]:
    match = ENC_RE.match(text)
    if match is None:
        raise SopsFormatError(f"{what} is not a sops-encrypted value (ENC[AES256_GCM,...])",
                              hint="the file was edited by hand; restore it from git")
    data, iv, tag, kind = match.groups()
    try:
        raw = base64.b64decode(data, validate=True) + base64.b64decode(tag, validate=True)
        return kind, aead.decrypt(base64.b64decode(iv, validate=True), raw, aad.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError):
        raise SopsFormatError(f"{what} fails authentication: the file was changed after sops encrypted it",
                              hint="restore it from git, or re-encrypt it with sops") from None


def _plain(node: Any) -> Leaf:
    """An unencrypted scalar, in the form Go's sops gives it."""
    if node is None:
        return Leaf("null", SecretValue(b""))
    if isinstance(node, bool):
        return Leaf("bool", SecretValue(b"true" if node else b"false"))
    if isinstance(node, int):
        return Leaf("int", SecretValue(str(node)))
    if isinstance(node, float):
        return Leaf("float", SecretValue(go_json_float(node)))
    if isinstance(node, datetime | date):
        return Leaf("time", SecretValue(_rfc3339(node)))
    return Leaf("str", SecretValue(str(node)))


def _mac_bytes(leaf: Leaf) -> bytes:
    if leaf.kind == "bool":  # sops hashes booleans the Python way
        return b"True" if leaf.value.reveal() == b"true" else b"False"
    if leaf.kind == "float":  # and numbers in Go's plain decimal form
        return go_float(float(leaf.value.reveal())).encode()
    return leaf.value.reveal()


def go_float(number: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'f', -1, 64)``: shortest round-trip digits, no exponent."""
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "+Inf" if number > 0 else "-Inf"
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_json_float(number: float) -> str:
    """A number as Go's ``encoding/json`` (and so ``sops decrypt --output-type json``) writes it."""
    magnitude = abs(number)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21 or number != number or magnitude == float("inf"):
        return go_float(number)
    text = repr(number)  # shortest digits with an exponent, as Go's 'e' format
    mantissa, exponent = text.split("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    if sign == "+" or len(digits) > 1:
        digits = digits.rjust(2, "0")
    return f"{mantissa}e{sign}{digits}"


def _rfc3339(moment: date) -> str:
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if moment.tzinfo is None or moment.utcoffset() == UTC.utcoffset(None):
        return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return moment.replace(microsecond=0).isoformat()


# --- key paths -------------------------------------------------------------------------

_EXTRACT_RE = re.compile(r'\[(?:"((?:[^"\\]|\\.)*)"|(\d+))\]')


def parse_key_path(text: str) -> list[str | int]:
    """``a.b.0.c`` (an integer segment indexes a list) or sops' ``["a.b"][0]["c"]`` syntax."""
    text = text.strip()
    if text.startswith("["):
        parts: list[str | int] = []
        pos = 0
        for match in _EXTRACT_RE.finditer(text):
            if match.start() != pos:
                break
            parts.append(json.loads(f'"{match.group(1)}"') if match.group(1) is not None else int(match.group(2)))
            pos = match.end()
        if pos != len(text) or not parts:
            raise ValueError('write the key path as a.b.c or in sops --extract syntax, e.g. ["a.b"]["c"]')
        return parts
    segments = text.split(".")
    if any(s == "" for s in segments):
        raise ValueError("the key path has an empty segment")
    return [int(s) if s.isdigit() else s for s in segments]


def find(tree: Any, path: Sequence[str | int]) -> Leaf | dict[str, Any] | list[Any]:
    """The node at ``path``; raise KeyError naming the first segment not found."""
    node = tree
    for i, part in enumerate(path):
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            raise KeyError(_display([str(p) for p in path[: i + 1]]))
    return node  # type: ignore[no-any-return]


def keys_at(node: Any) -> str:
    """What a mapping or list offers, for a hint (key names are in clear in the file)."""
    if isinstance(node, dict):
        names = list(node)
        shown = ", ".join(str(n) for n in names[:10]) + (f", … ({len(names)} keys)" if len(names) > 10 else "")
        return f"keys: {shown}" if names else "an empty mapping"
    if isinstance(node, list):
        return f"a list of {len(node)} items (index it with a number)"
    return "a value"


def _display(path: Sequence[str]) -> str:
    return ".".join(path) if path else "the top level"


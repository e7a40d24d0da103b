"""Native SOPS decryption against files made by the real ``sops`` binary, byte for byte."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cloudsync.values import age
from cloudsync.values.sops import FileProblem, open_file
from cloudsync.values.sopsfile import Leaf, SopsFormatError, decrypt, find, parse, parse_key_path
from cloudsync.values.sources import ResolveContext
from tests.values.conftest import AgeKey

YAML_DOC = """\
# a comment sops encrypts too
db:
  password: "p@ss: w0rd # not a comment"
  port: 5432
  ratio: 1.0
  big: 1e20
  tiny: 0.0000125
  tinier: 1.5e-7
  huge: 2.5e+22
  enabled: true
  disabled: false
  word: yes
  octal: 0o17
  leading_zero: 017
  when: 2024-01-02
  none: null
  empty: ""
  multiline: |
    line one
      indented line two
  unicode: "päss–wörd ✓"
  trailing: "spaces   "
servers:
  - name: a
    token: tok-a
  - name: b
    token: tok-b
plain_unencrypted: visible
nested_unencrypted:
  n: 1.0
  big: 1e22
  flag: false
  word: no
  octal: 0o17
  when: 2024-01-02
  at: 2024-01-02T10:00:00+02:00
  utc: 2024-01-02 10:00:00
  none: ~
"""

JSON_DOC = {
    "api": {"key": "k-123", "port": 8443, "ratio": 0.5, "big": 1e20, "on": True, "none": None,
            "list": [1, "two", {"three": "3"}]},
    "note_unencrypted": {"n": 1.0, "s": "clear"},
}


def scalar_paths(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in scalar_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in scalar_paths(v, (*path, i))]
    return [(path, node)]


class Number(str):
    """A JSON number kept as the exact text sops printed."""


def sops_json(data: bytes) -> Any:
    return json.loads(data, parse_float=Number, parse_int=Number)


def sops_text(value: Any) -> bytes:
    """How ``sops decrypt --output-type json`` writes a scalar, as cloudsync stores it."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


def native_tree(path: Path, key: AgeKey, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key.file))
    opened = open_file(path, ResolveContext(root=path.parent))
    assert not isinstance(opened, FileProblem), opened
    return opened.tree


def extract_arg(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{json.dumps(p)}]" if isinstance(p, str) else f"[{p}]" for p in path)


@pytest.mark.parametrize(("name", "text", "args"), [
    ("doc.enc.yaml", YAML_DOC, ()),
    ("doc.enc.json", json.dumps(JSON_DOC), ()),
    ("mac-only.enc.yaml", YAML_DOC, ("--mac-only-encrypted",)),
    ("regex.enc.yaml", YAML_DOC, ("--encrypted-regex", "^(password|token|multiline)$")),
    ("unencrypted-regex.enc.json", json.dumps(JSON_DOC), ("--unencrypted-regex", "^(port|on)$")),
], ids=["yaml", "json", "mac-only-encrypted", "encrypted-regex", "unencrypted-regex"])
def test_every_value_agrees_with_sops_decrypt_byte_for_byte(
        name: str, text: str, args: tuple[str, ...], isolated_home: Path, age_key: AgeKey,
        sops_encrypt: Callable[..., Path], sops_decrypt: Callable[..., subprocess.CompletedProcess[bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = sops_encrypt(text, [age_key.recipient], name=name, args=args)
    reference = sops_decrypt(path, "--output-type", "json", key_file=age_key.file)
    assert reference.returncode == 0, reference.stderr
    expected = sops_json(reference.stdout)
    tree = native_tree(path, age_key, monkeypatch)

    checked = 0
    for key_path, value in scalar_paths(expected):
        leaf = find(tree, key_path)
        assert isinstance(leaf, Leaf)
        if value is None:
            assert leaf.kind == "null"
            continue
        assert leaf.value.reveal() == sops_text(value), key_path
        checked += 1
    assert checked >= 8
    # Strings exactly as `sops decrypt --extract` prints them (multi-line, unicode, trailing spaces).
    for key_path, value in scalar_paths(expected):
        if type(value) is str and ("\n" in value or not value.isascii() or value.endswith(" ")):
            out = sops_decrypt(path, "--extract", extract_arg(key_path), key_file=age_key.file)
            assert out.stdout == find(tree, key_path).value.reveal()  # type: ignore[union-attr]


def test_a_file_for_several_recipients_opens_with_any_one_of_them(
        isolated_home: Path, make_age_key: Callable[[str], AgeKey], sops_encrypt: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = make_age_key("alice"), make_age_key("bob")
    path = sops_encrypt("token: t-1\n", [alice.recipient, bob.recipient])
    tree = native_tree(path, bob, monkeypatch)
    assert tree["token"].value.reveal() == b"t-1"


@pytest.mark.parametrize("where", ["SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "user-config", "ssh"])
def test_identities_are_found_where_sops_finds_them(
        where: str, isolated_home: Path, age_key: AgeKey, sops_encrypt: Callable[..., Path],
        sops_decrypt: Callable[..., subprocess.CompletedProcess[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    recipient = age_key.recipient
    if where == "SOPS_AGE_KEY":
        monkeypatch.setenv("SOPS_AGE_KEY", f"# comment\n{age_key.identity}\n")
    elif where == "SOPS_AGE_KEY_FILE":
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.file))
    elif where == "SOPS_AGE_KEY_CMD":
        monkeypatch.setenv("SOPS_AGE_KEY_CMD", f"cat {age_key.file}")
    elif where == "user-config":
        target = isolated_home / ".config" / "sops" / "age" / "keys.txt"
        target.parent.mkdir(parents=True)
        target.write_text(age_key.file.read_text())
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        ssh_dir = isolated_home / ".ssh"
        ssh_dir.mkdir()
        (ssh_dir / "id_ed25519").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        recipient = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                  serialization.PublicFormat.OpenSSH).decode()
    path = sops_encrypt("token: t-2\n", [recipient])
    opened = open_file(path, ResolveContext(root=path.parent))
    assert not isinstance(opened, FileProblem), opened
    assert opened.tree["token"].value.reveal() == b"t-2"
    # The real sops, given the same environment, finds the same identity.
    assert sops_decrypt(path, "--extract", '["token"]', inherit=True).stdout == b"t-2"


def test_each_file_is_decrypted_once_per_run(isolated_home: Path, age_key: AgeKey, sops_encrypt: Callable[..., Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = sops_encrypt("a: 1\nb: 2\n", [age_key.recipient])
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.file))
    calls: list[int] = []
    real = age.unwrap_data_key
    monkeypatch.setattr(age, "unwrap_data_key", lambda *a: calls.append(1) or real(*a))
    ctx = ResolveContext(root=path.parent)
    for _ in range(3):
        assert not isinstance(open_file(path, ctx), FileProblem)
    assert calls == [1]


# --- tampering and wrong keys ------------------------------------------------------------


def _tamper(path: Path, how: str) -> None:
    text = path.read_text()
    if how == "ciphertext":
        text = re.sub(r"(password: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"),
                      text, count=1)
    elif how == "swapped-values":
        a = re.search(r"password: (ENC\[[^\]]+\])", text)
        b = re.search(r"user: (ENC\[[^\]]+\])", text)
        assert a and b
        text = text.replace(a.group(1), "@@A@@").replace(b.group(1), a.group(1)).replace("@@A@@", b.group(1))
    elif how == "unencrypted-value":
        text = text.replace("env_unencrypted: prod", "env_unencrypted: staging")
    elif how == "removed-value":
        text = re.sub(r"\n    user: ENC\[[^\]]+\]", "", text)
    elif how == "mac":
        text = re.sub(r"(mac: ENC\[AES256_GCM,data:)(.)", lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), text)
    path.write_text(text)


@pytest.mark.parametrize(("how", "says"), [
    ("ciphertext", "the value at db.password fails authentication"),
    ("swapped-values", "fails authentication"),
    ("unencrypted-value", "the MAC does not match the content"),
    ("removed-value", "the MAC does not match the content"),
    ("mac", "the MAC fails authentication"),
])
def test_a_tampered_file_is_refused_like_sops_refuses_it(
        how: str, says: str, isolated_home: Path, age_key: AgeKey, canary: str, sops_encrypt: Callable[..., Path],
        sops_decrypt: Callable[..., subprocess.CompletedProcess[bytes]], monkeypatch: pytest.MonkeyPatch) -> None:
    path = sops_encrypt(f"db:\n  password: {canary}\n  user: admin\nenv_unencrypted: prod\n", [age_key.recipient])
    _tamper(path, how)
    assert sops_decrypt(path, key_file=age_key.file).returncode != 0  # the real tool refuses it too
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.file))
    opened = open_file(path, ResolveContext(root=path.parent))
    assert isinstance(opened, FileProblem)
    assert says in opened.message
    assert canary not in opened.message + (opened.hint or "")


def test_a_wrong_key_names_the_recipients_and_where_it_looked(
        isolated_home: Path, make_age_key: Callable[[str], AgeKey], sops_encrypt: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    owner, stranger = make_age_key("owner"), make_age_key("stranger")
    path = sops_encrypt("token: t\n", [owner.recipient])
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(stranger.file))
    opened = open_file(path, ResolveContext(root=path.parent))
    assert isinstance(opened, FileProblem)
    assert opened.message.startswith("none of the age identities found opens it")
    assert owner.recipient in opened.message and "SOPS_AGE_KEY_FILE" in opened.message
    assert stranger.identity not in opened.message
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    monkeypatch.setenv("SOPS_AGE_KEY", "AGE-SECRET-KEY-1NOTAKEY")
    opened = open_file(path, ResolveContext(root=path.parent))
    assert isinstance(opened, FileProblem)
    assert "no age identity was found" in opened.message
    assert "SOPS_AGE_KEY: 1 line(s) are not age secret keys" in opened.message
    assert "NOTAKEY" not in opened.message


def test_files_only_kms_can_open_go_to_the_sops_binary(tmp_path: Path, isolated_home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"token": "ENC[AES256_GCM,data:AA==,iv:AAAA,tag:AAAA,type:str]",
           "sops": {"kms": [{"arn": "arn:aws:kms:us-east-1:123456789012:key/x", "enc": "AQID"}],
                    "lastmodified": "2026-01-01T00:00:00Z", "mac": "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
                    "version": "3.11.0"}}
    path = tmp_path / "kms.enc.json"
    path.write_text(json.dumps(doc))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    opened = open_file(path, ResolveContext(root=tmp_path))
    assert isinstance(opened, FileProblem)
    assert "its data key is held by kms" in opened.message and "there is none on PATH" in opened.message
    assert "sops-binary" in (opened.hint or "")

    # A stand-in for sops that records how it was called and prints what sops would.
    fake = bin_dir / "sops"
    fake.write_text('#!/bin/sh\necho "$@" > "${0%/*}/args"\necho \'{"token": "from-kms", "n": 3}\'\n')
    fake.chmod(0o755)
    opened = open_file(path, ResolveContext(root=tmp_path))
    assert not isinstance(opened, FileProblem), opened
    assert opened.source == "sops binary"
    assert opened.tree["token"].value.reveal() == b"from-kms" and opened.tree["n"].value.reveal() == b"3"
    assert (bin_dir / "args").read_text().split() == ["decrypt", "--input-type", "json", "--output-type", "json",
                                                      str(path)]

    fake.write_text("#!/bin/sh\necho 'Failed to get the data key required to decrypt the SOPS file.' >&2\nexit 128\n")
    opened = open_file(path, ResolveContext(root=tmp_path))
    assert isinstance(opened, FileProblem)
    assert opened.message == ("the sops binary could not decrypt it: Failed to get the data key required to decrypt "
                              "the SOPS file.")


@pytest.mark.parametrize(("text", "message"), [
    (b"a: 1\n", "no 'sops' metadata block"),
    (b"a: [1\n", "not valid yaml at line"),
    (b"a: 1\n---\nb: 2\n", "a yaml file with 2 documents"),
    (b"a: 1\nsops: {age: []}\n", "no 'lastmodified' or 'mac'"),
])
def test_files_that_are_not_sops_files_are_named_as_such(text: bytes, message: str) -> None:
    with pytest.raises(SopsFormatError) as raised:
        parse(text, "yaml")
    assert message in raised.value.message


@pytest.mark.parametrize(("text", "expected"), [
    ("a.b.c", ["a", "b", "c"]),
    ("servers.1.token", ["servers", 1, "token"]),
    ('["a.b"]["c"]', ["a.b", "c"]),
    ('["servers"][0]["token"]', ["servers", 0, "token"]),
])
def test_key_paths_take_dots_or_the_sops_extract_syntax(text: str, expected: list[str | int]) -> None:
    assert parse_key_path(text) == expected


@pytest.mark.parametrize("text", ["a..b", '["a"', '["a"]x', ""])
def test_malformed_key_paths_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_key_path(text)


def test_decrypt_rejects_a_wrong_data_key(isolated_home: Path, age_key: AgeKey, sops_encrypt: Callable[..., Path]) -> None:
    path = sops_encrypt("a: secret\n", [age_key.recipient])
    doc, meta = parse(path.read_bytes(), "yaml")
    with pytest.raises(SopsFormatError, match="the value at a fails authentication"):
        decrypt(doc, meta, bytes(32))

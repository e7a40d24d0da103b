"""The embedded store: encryption at rest, keys, concurrent writers, soft delete."""

from __future__ import annotations

import base64
import multiprocessing
import os
import pickle
import sqlite3
from pathlib import Path

import pytest

from cloudsync.providers.local import LocalStore, LocalStoreError
from cloudsync.values.secret import SecretValue


def test_values_are_encrypted_at_rest_and_the_key_file_is_private(tmp_path: Path, canary: str) -> None:
    store = LocalStore(tmp_path / "s.db")
    store.put_value("a/b", SecretValue(canary))
    store.close()
    for path in tmp_path.iterdir():
        assert canary.encode() not in path.read_bytes(), path
    assert (tmp_path / "s.db.key").stat().st_mode & 0o777 == 0o600
    assert LocalStore(tmp_path / "s.db").get_value("a/b").reveal_text() == canary


def test_a_wrong_key_is_a_clear_error(tmp_path: Path, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "the first passphrase, long enough")
    LocalStore(tmp_path / "s.db").put_value("a/b", SecretValue(canary))
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "another passphrase, just as long")
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a/b")
    assert "different key" in info.value.message and canary not in str(info.value)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue("x"))
    os.chmod(tmp_path / "s.db.key", 0o644)
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a")
    assert "readable by other users (mode 644)" in info.value.message
    assert info.value.hint == f"chmod 600 {tmp_path / 's.db.key'}"


@pytest.mark.parametrize("content", [b"garbage, not base64 at all\n", b"", b"c2hvcnQ=\n", b"\x00\xff" * 40])
def test_a_garbage_key_file_is_refused_clearly(tmp_path: Path, canary: str, content: bytes) -> None:
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue(canary))
    key_file = tmp_path / "s.db.key"
    key_file.write_bytes(content)
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a")
    assert info.value.message == (f"the key file {key_file} holds no key (cloudsync writes 32 random bytes "
                                  "in urlsafe base64 there)")
    assert info.value.hint is not None and f"restore {key_file} from a backup" in info.value.hint
    assert key_file.read_bytes() == content  # never replaced


def test_a_missing_key_file_beside_a_store_is_refused_and_never_replaced(tmp_path: Path, canary: str) -> None:
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue(canary))
    key_file = tmp_path / "s.db.key"
    saved = key_file.read_bytes()
    key_file.unlink()
    for attempt in (lambda s: s.get_value("a"), lambda s: s.put_value("b", SecretValue("new"))):
        with pytest.raises(LocalStoreError) as info:
            attempt(LocalStore(tmp_path / "s.db"))
        assert info.value.message == (f"the key of the local store {tmp_path / 's.db'} is missing: "
                                      f"CLOUDSYNC_LOCAL_KEY is not set and {key_file} does not exist")
        assert "never makes a new key for a store that holds values" in (info.value.hint or "")
        assert not key_file.exists()
    key_file.write_bytes(saved)
    key_file.chmod(0o600)
    assert LocalStore(tmp_path / "s.db").get_value("a").reveal_text() == canary  # the restored key still opens it


def test_a_store_made_with_the_env_key_never_gets_a_key_file(tmp_path: Path, canary: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "a passphrase that is long enough, 32+")
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue(canary))
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "")  # a CI secret that is not configured
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a")
    assert "CLOUDSYNC_LOCAL_KEY is empty" in info.value.message
    assert not (tmp_path / "s.db.key").exists()


def test_a_store_that_never_held_a_value_gets_its_key_on_first_write(tmp_path: Path, canary: str) -> None:
    store = LocalStore(tmp_path / "s.db")
    assert store.rows() == []  # a metadata-only run opened (and created) the store file
    store.close()
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue(canary))
    assert (tmp_path / "s.db.key").stat().st_mode & 0o777 == 0o600
    assert LocalStore(tmp_path / "s.db").get_value("a").reveal_text() == canary


def test_a_key_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s.db.key").symlink_to("/dev/null")
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").put_value("a", SecretValue("x"))
    assert info.value.message == f"the key file {tmp_path / 's.db.key'} is not a regular file"


@pytest.mark.parametrize("length", [16, 31])
def test_a_passphrase_shorter_than_32_characters_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            length: int) -> None:
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "p" * length)
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").put_value("a", SecretValue("x"))
    assert info.value.message == "CLOUDSYNC_LOCAL_KEY is too short: a key needs at least 32 characters"
    assert not (tmp_path / "s.db.key").exists()


def test_a_32_character_passphrase_or_a_base64_key_opens_the_store(tmp_path: Path, canary: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name, key in (("p.db", "p" * 32), ("k.db", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))):
        monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", key)
        LocalStore(tmp_path / name).put_value("a", SecretValue(canary))
        assert LocalStore(tmp_path / name).get_value("a").reveal_text() == canary
        assert not (tmp_path / f"{name}.key").exists()


def test_a_file_that_is_not_sqlite_gets_a_hint_about_the_store(tmp_path: Path) -> None:
    (tmp_path / "s.db").write_bytes(b"this is not an SQLite database, it is a text file" * 100)
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").rows()
    assert info.value.message.startswith(f"the local store {tmp_path / 's.db'} is damaged or not a cloudsync store")
    assert info.value.hint is not None and "permissions" not in info.value.hint
    assert "restore it from a backup" in info.value.hint


def test_an_sqlite_file_of_another_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, payload BLOB)")
    for use in (lambda s: s.rows(), lambda s: s.put_value("a", SecretValue("x"))):
        with pytest.raises(LocalStoreError) as info:
            use(LocalStore(tmp_path / "s.db"))
        assert info.value.message.startswith(
            f"the local store {tmp_path / 's.db'} is damaged or not a cloudsync store: table secrets has no column ")
        assert "permissions" not in (info.value.hint or "")
    assert not (tmp_path / "s.db.key").exists()


def test_a_path_that_cannot_be_opened_still_gets_the_path_hint(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "a-file" / "s.db").rows()
    assert info.value.message.startswith(f"cannot open local store {tmp_path / 'a-file' / 's.db'}")
    assert "permissions" in (info.value.hint or "")


def _writer(path: str, prefix: str, count: int) -> None:
    store = LocalStore(path)
    for i in range(count):
        store.put_value(f"{prefix}/{i % 7}", SecretValue(f"{prefix}-{i}"))


def test_two_processes_writing_one_store_do_not_corrupt_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    LocalStore(path).put_value("warm/up", SecretValue("x"))  # create the key file before the race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), name, 60)) for name in ("p1", "p2")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    store = LocalStore(path)
    names = {row["name"] for row in store.rows()}
    assert names == {"warm/up"} | {f"{p}/{i}" for p in ("p1", "p2") for i in range(7)}
    for prefix in ("p1", "p2"):
        assert store.get_value(f"{prefix}/3").reveal_text() == f"{prefix}-59"


def test_soft_deleted_values_are_not_readable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s.db")
    store.put_value("a", SecretValue("x"))
    from datetime import UTC, datetime

    store.update("a", deleted_at=datetime.now(UTC))
    with pytest.raises(LocalStoreError):
        store.get_value("a")


def test_secret_values_never_render(canary: str) -> None:
    value = SecretValue(canary)
    for text in (repr(value), str(value), f"{value}", f"{value!r}", "%s" % (value,)):  # noqa: UP031
        assert canary not in text
    with pytest.raises(TypeError):
        pickle.dumps(value)
    with pytest.raises(TypeError):
        hash(value)
    assert value == SecretValue(canary) and value != SecretValue("other")

"""The embedded store: encryption at rest, keys, concurrent writers, soft delete."""

from __future__ import annotations

import multiprocessing
import os
import pickle
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
    monkeypatch.setenv("CLOUDSYNC_LOCAL_KEY", "another passphrase, long enough")
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a/b")
    assert "different key" in info.value.message and canary not in str(info.value)


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    LocalStore(tmp_path / "s.db").put_value("a", SecretValue("x"))
    os.chmod(tmp_path / "s.db.key", 0o644)
    with pytest.raises(LocalStoreError) as info:
        LocalStore(tmp_path / "s.db").get_value("a")
    assert "readable by others" in info.value.message and info.value.hint == f"chmod 600 {tmp_path / 's.db.key'}"


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

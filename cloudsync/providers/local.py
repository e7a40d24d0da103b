"""The embedded ``local`` provider: a SQLite file, values encrypted at rest with AES-GCM.

It behaves like a small cloud secret store: labels, description, expiry, readers, a
version history, soft delete and restore. The value key comes from ``CLOUDSYNC_LOCAL_KEY``
(32 bytes in urlsafe base64, or a passphrase stretched with scrypt) or from a key file
``<store>.key`` created with mode 0600 on first use. SQLite's WAL journal and
``BEGIN IMMEDIATE`` transactions let several cloudsync processes write one store safely;
an apply holds an exclusive lock file for the whole run.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cloudsync.providers.base import (
    CreateRequest,
    DeleteRequest,
    LockedError,
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    RestoreRequest,
    StateRequest,
    UpdateRequest,
    ValueRecord,
    decode_meta,
    encode_meta,
    not_owned,
    now,
)
from cloudsync.providers.local_rules import LocalTarget
from cloudsync.values.secret import SecretValue

ENV_KEY = "CLOUDSYNC_LOCAL_KEY"
_CHECK_PLAINTEXT = b"cloudsync local store key check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    description TEXT,
    labels TEXT NOT NULL,
    expires_at INTEGER,
    readers TEXT,
    current_version INTEGER,
    deleted_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
"""


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _dt(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


class LocalStoreError(ProviderError):
    pass


class LocalNotFound(LocalStoreError, NotFoundError):
    pass


class LocalStore:
    """The SQLite store itself; also the tool tests use to make out-of-band edits."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._aead: AESGCM | None = None

    # -- connection and key ---------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise LocalStoreError(f"cannot open local store {self.path}: {exc}",
                                      hint="check the target's path and its folder's permissions") from None
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _meta(self, conn: sqlite3.Connection, key: str) -> bytes | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    @property
    def aead(self) -> AESGCM:
        if self._aead is None:
            with self.transaction() as conn:
                salt = self._meta(conn, "kdf_salt")
                if salt is None:
                    salt = os.urandom(16)
                    conn.execute("INSERT INTO meta VALUES ('kdf_salt', ?)", (salt,))
                aead = AESGCM(self._key(salt))
                check = self._meta(conn, "key_check")
                if check is None:
                    nonce = os.urandom(12)
                    conn.execute("INSERT INTO meta VALUES ('key_check', ?)",
                                 (nonce + aead.encrypt(nonce, _CHECK_PLAINTEXT, None),))
                else:
                    try:
                        aead.decrypt(check[:12], check[12:], None)
                    except InvalidTag:
                        raise LocalStoreError(
                            f"the local store {self.path} was encrypted with a different key",
                            hint=f"set {ENV_KEY} (or the key file {self.key_file}) to the key it was created with",
                        ) from None
            self._aead = aead
        return self._aead

    @property
    def key_file(self) -> Path:
        return self.path.with_name(self.path.name + ".key")

    def _key(self, salt: bytes) -> bytes:
        raw = os.environ.get(ENV_KEY)
        if raw:
            try:
                key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
                if len(key) == 32:
                    return key
            except ValueError:
                pass
            if len(raw) < 16:
                raise LocalStoreError(f"{ENV_KEY} is too short",
                                      hint="use 32 random bytes in urlsafe base64, or a passphrase of 16+ characters")
            return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(raw.encode("utf-8"))
        return self._key_from_file()

    def _key_from_file(self) -> bytes:
        path = self.key_file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise LocalStoreError(f"key file {path} is readable by others (mode {mode:o})",
                                      hint=f"chmod 600 {path}") from None
            key = base64.urlsafe_b64decode(path.read_bytes().strip())
            if len(key) != 32:
                raise LocalStoreError(f"key file {path} does not hold a 32-byte key") from None
            return key
        key = os.urandom(32)
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.urlsafe_b64encode(key) + b"\n")
        return key

    # -- values --------------------------------------------------------------------

    def _encrypt(self, name: str, version: int, value: SecretValue) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        return nonce, self.aead.encrypt(nonce, value.reveal(), f"{name}\0{version}".encode())

    def _decrypt(self, name: str, version: int, nonce: bytes, ciphertext: bytes) -> SecretValue:
        try:
            return SecretValue(self.aead.decrypt(nonce, ciphertext, f"{name}\0{version}".encode()))
        except InvalidTag:
            raise LocalStoreError(f"version {version} of {name} does not decrypt (tampered or wrong key)") from None

    def get_value(self, name: str) -> SecretValue:
        aead_ready = self.aead  # noqa: F841 - verifies the key before reading
        with self._lock:
            row = self.conn.execute(
                "SELECT v.version, v.nonce, v.ciphertext FROM secrets s JOIN versions v "
                "ON v.name = s.name AND v.version = s.current_version WHERE s.name = ? AND s.deleted_at IS NULL",
                (name,)).fetchone()
        if row is None:
            raise LocalNotFound(f"secret {name} not found", code="NotFound")
        return self._decrypt(name, row[0], bytes(row[1]), bytes(row[2]))

    def put_value(self, name: str, value: SecretValue, labels: Mapping[str, str] | None = None) -> int:
        """Add a version and make it current; create the secret when absent."""
        self.aead  # noqa: B018 - unlock the key before the write transaction starts
        with self.transaction() as conn:
            return self._put_value(conn, name, value, labels)

    def _put_value(self, conn: sqlite3.Connection, name: str, value: SecretValue,
                   labels: Mapping[str, str] | None) -> int:
        stamp = _ts(now())
        row = conn.execute("SELECT current_version FROM secrets WHERE name = ?", (name,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO secrets (name, labels, created_at, updated_at, revision) VALUES (?, ?, ?, ?, 0)",
                         (name, json.dumps(dict(labels or {})), stamp, stamp))
            version = 1
        else:
            last = conn.execute("SELECT MAX(version) FROM versions WHERE name = ?", (name,)).fetchone()[0]
            version = (last or 0) + 1
        nonce, ciphertext = self._encrypt(name, version, value)
        conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?)", (name, version, nonce, ciphertext, stamp))
        conn.execute("UPDATE secrets SET current_version = ?, updated_at = ?, revision = revision + 1 WHERE name = ?",
                     (version, stamp, name))
        if labels is not None:
            conn.execute("UPDATE secrets SET labels = ? WHERE name = ?", (json.dumps(dict(labels)), name))
        return version

    # -- metadata ------------------------------------------------------------------

    def update(self, name: str, **fields: Any) -> None:
        """Change metadata columns of one secret (labels, description, expires_at, readers, deleted_at)."""
        with self.transaction() as conn:
            self._update(conn, name, fields)

    def _update(self, conn: sqlite3.Connection, name: str, fields: Mapping[str, Any]) -> None:
        columns: dict[str, Callable[[Any], Any]] = {"labels": json.dumps, "description": lambda v: v, "expires_at": _ts,
                   "readers": lambda v: None if v is None else json.dumps(sorted(v)), "deleted_at": _ts}
        sets = [f"{col} = ?" for col in fields]
        args = [columns[col](val) for col, val in fields.items()]
        cur = conn.execute(f"UPDATE secrets SET {', '.join([*sets, 'updated_at = ?', 'revision = revision + 1'])} "
                           "WHERE name = ?", (*args, _ts(now()), name))
        if cur.rowcount != 1:
            raise LocalNotFound(f"secret {name} not found", code="NotFound")

    def purge(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM versions WHERE name = ?", (name,))
            conn.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def rows(self) -> list[sqlite3.Row]:
        with self._lock:
            conn = self.conn
            conn.row_factory = sqlite3.Row
            try:
                return conn.execute(
                    "SELECT s.*, (SELECT v.created_at FROM versions v WHERE v.name = s.name AND v.version = s.current_version)"
                    " AS current_version_at FROM secrets s ORDER BY s.name").fetchall()
            finally:
                conn.row_factory = None


class LocalWriter:
    """The four writes of the local store, each one transaction."""

    def __init__(self, store: LocalStore, counter: Counter[str]) -> None:
        self.store = store
        self.counter = counter

    def create(self, request: CreateRequest) -> ValueRecord | None:
        return self._write(request)

    def update(self, request: UpdateRequest) -> ValueRecord | None:
        return self._write(request)

    def restore(self, request: RestoreRequest) -> ValueRecord | None:
        return self._write(request)  # writing the state clears deleted_at

    def delete(self, request: DeleteRequest) -> None:
        self.counter["delete"] += 1
        name = request.name
        with self.store.transaction() as conn:
            row = conn.execute("SELECT deleted_at FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is None:
                return  # already gone: a retried delete converges
            if request.before is not None and request.before.purge_on_delete:
                conn.execute("DELETE FROM versions WHERE name = ?", (name,))
                conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
            elif row[0] is None:
                self.store._update(conn, name, {"deleted_at": now()})

    def _write(self, request: StateRequest) -> ValueRecord | None:
        """Create, update or restore: the secret ends in ``request.state``, with the value if one is given."""
        self.counter[request.action] += 1
        name, state = request.name, request.state
        if request.value is not None:
            self.store.aead  # noqa: B018 - unlock the key before the write transaction starts
        with self.store.transaction() as conn:
            row = conn.execute("SELECT labels FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is None and not isinstance(request, CreateRequest):
                raise LocalNotFound(f"secret {name} not found", code="NotFound")
            if row is not None and isinstance(request, CreateRequest):
                meta = decode_meta(json.loads(row[0]))  # a retried create may go on; nothing else may
                if meta.owner != request.stack:
                    raise not_owned(request, meta.owner, managed=meta.managed)
            record = request.record
            if request.value is not None:
                version = self.store._put_value(conn, name, request.value, None)
                record = ValueRecord(version=str(version), fingerprint=record.fingerprint if record else None,
                                     key_id=record.key_id if record else None, spec=record.spec if record else None,
                                     written_at=record.written_at if record and record.written_at else now())
            elif row is None:
                stamp = _ts(now())
                conn.execute("INSERT INTO secrets (name, labels, created_at, updated_at, revision) "
                             "VALUES (?, '{}', ?, ?, 0)", (name, stamp, stamp))
            fields: dict[str, Any] = {
                "labels": {**state.labels, **encode_meta(request.stack, state, record)},
                "description": state.description,
                "expires_at": state.expires_at,
                "deleted_at": None,
            }
            if state.readers is not None:
                fields["readers"] = state.readers
            self.store._update(conn, name, fields)
        return record if request.value is not None else None


class LocalProvider(Provider[LocalTarget]):
    """The ``local`` target kind."""

    kind = "local"
    limits = RateLimits(writes_per_second=10_000, max_parallel=1)

    def __init__(self, target: str, config: LocalTarget, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        path = Path(config.path)
        self.store = LocalStore(path if path.is_absolute() else context.root / path)
        self.writer = LocalWriter(self.store, self.api_calls)

    def close(self) -> None:
        self.store.close()

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return {
            Operation.PLAN_METADATA: ["read the store file"],
            Operation.PLAN: ["read the store file", "read the store key"],
            Operation.APPLY: ["write the store file", "read the store key", "create the lock file"],
        }

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        self.api_calls["list"] += 1
        try:
            rows = self.store.rows()
        except sqlite3.Error as exc:
            raise LocalStoreError(f"cannot read local store {self.store.path}: {exc}") from None
        return [self._remote(row) for row in rows]

    @staticmethod
    def _remote(row: sqlite3.Row) -> RemoteSecret:
        labels = json.loads(row["labels"])
        meta = decode_meta(labels)
        readers = row["readers"]
        return RemoteSecret(
            name=row["name"], labels=meta.user_labels, owner=meta.owner, managed=meta.managed,
            description=row["description"], expires_at=_dt(row["expires_at"]),
            readers=frozenset(json.loads(readers)) if readers is not None else frozenset(),
            current_version=str(row["current_version"]) if row["current_version"] is not None else None,
            current_version_at=_dt(row["current_version_at"]),
            record=meta.record, deleted=row["deleted_at"] is not None, protected=meta.protected,
            purge_on_delete=meta.purge_on_delete, revision=str(row["revision"]),
        )

    def read_value(self, name: str) -> SecretValue:
        self.api_calls["get_value"] += 1
        return self.store.get_value(name)

    @contextlib.contextmanager
    def _flock(self, holder: str) -> Iterator[None]:
        path = self.store.path.with_name(self.store.path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                other = handle.read().strip() or "another process"
                raise LockedError(f"target {self.target} is locked by another apply ({other})",
                                  code="Locked", hint="wait for it to finish; nothing was changed") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{holder} pid {os.getpid()} on {socket.gethostname()} since {now().isoformat()}")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    def lock(self, holder: str) -> contextlib.AbstractContextManager[None]:
        return self._flock(holder)

"""The embedded ``local`` provider: a SQLite file, values encrypted at rest with AES-GCM.

It behaves like a small cloud secret store: labels, description, expiry, readers, a
version history, soft delete and restore. The value key comes from ``CLOUDSYNC_LOCAL_KEY``
(32 bytes in urlsafe base64, or a passphrase of 32+ characters stretched with scrypt) or
from a key file ``<store>.key`` created with mode 0600 on first use — and only then: once a
store holds anything encrypted, a missing key is an error, never a new key. SQLite's WAL journal and
``BEGIN IMMEDIATE`` transactions let several cloudsync processes write one store safely;
an apply holds an exclusive lock file for the whole run.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import socket
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from cloudsync.keymaterial import KeyProblem, create_key_file, env_key, env_key_state, read_key_file
from cloudsync.providers.base import (
    CreateRequest,
    DeleteRequest,
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    RestoreRequest,
    RetireRequest,
    SecretState,
    StateRequest,
    UpdateRequest,
    ValueRecord,
    VersionInfo,
    decode_meta,
    encode_meta,
    may_retire,
    not_owned,
    now,
    retire_refused,
    without_marker,
)
from cloudsync.providers.lease import Holder, LeaseLost, LeaseTerms, TargetLock
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
CREATE TABLE IF NOT EXISTS disabled_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    disabled_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
"""


@functools.cache
def _schema_columns() -> dict[str, frozenset[str]]:
    """The columns of each table, read from the schema itself."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript(_SCHEMA)
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: frozenset(row[1] for row in conn.execute(f"PRAGMA table_info({t})")) for t in tables}


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
                self._prepare(conn)
            except sqlite3.OperationalError as exc:
                raise LocalStoreError(f"cannot open local store {self.path}: {exc}",
                                      hint="check the target's path and its folder's permissions") from None
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None  # not an SQLite file, or not our schema
            except OSError as exc:
                raise LocalStoreError(f"cannot open local store {self.path}: {exc.strerror}",
                                      hint="check the target's path and its folder's permissions") from None
            self._conn = conn
        return self._conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._check_schema(conn)
        except BaseException:
            conn.close()
            raise

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        # CREATE TABLE IF NOT EXISTS keeps a table of the same name with other columns: a file
        # of another program must be refused here, not fail later in the middle of an apply.
        for table, columns in _schema_columns().items():
            found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            missing = sorted(columns - found)
            if missing:
                raise sqlite3.DatabaseError(f"table {table} has no column {', '.join(missing)}")

    def _reraise_damage(self, exc: BaseException) -> None:
        """Raise a store error for a damaged file; locks, permissions and the rest pass through."""
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            raise self._damaged(exc) from None  # e.g. "database disk image is malformed"

    def _damaged(self, exc: sqlite3.Error) -> LocalStoreError:
        return LocalStoreError(
            f"the local store {self.path} is damaged or not a cloudsync store: {exc}",
            hint="restore it from a backup, or point the target's path at another file "
                 "(cloudsync never repairs or replaces a store)")

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
            except BaseException as exc:
                conn.execute("ROLLBACK")
                self._reraise_damage(exc)
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
                check = self._meta(conn, "key_check")
                # A store with a key check has encrypted something: only its own key opens it.
                aead = AESGCM(self._key(salt, may_create=check is None))
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

    def _key(self, salt: bytes, *, may_create: bool) -> bytes:
        try:
            raw = env_key(ENV_KEY)
        except KeyProblem as problem:
            raise LocalStoreError(problem.message, hint=problem.hint) from None
        if raw is not None:
            try:
                key = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
                if len(key) == 32:
                    return key
            except ValueError:
                pass
            return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(raw)
        return self._key_from_file(may_create=may_create)

    def _key_from_file(self, *, may_create: bool) -> bytes:
        path = self.key_file
        if not path.exists() and not path.is_symlink():
            if not may_create:
                raise LocalStoreError(
                    f"the key of the local store {self.path} is missing: {ENV_KEY} {env_key_state(ENV_KEY)} "
                    f"and {path} does not exist",
                    hint=f"restore {path} from a backup, or set {ENV_KEY} to the key the store was created with; "
                         "cloudsync never makes a new key for a store that holds values")
            created = create_key_file(path)
            if created is not None:
                return created
        try:
            return read_key_file(path, fix=f"restore {path} from a backup, or set {ENV_KEY} to the store's key")
        except KeyProblem as problem:
            raise LocalStoreError(problem.message, hint=problem.hint) from None

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
            conn.execute("DELETE FROM disabled_versions WHERE name = ?", (name,))
            conn.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, newest first (metadata only: no value is decrypted)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT v.version, v.created_at, d.disabled_at FROM versions v LEFT JOIN disabled_versions d "
                "ON d.name = v.name AND d.version = v.version WHERE v.name = ? ORDER BY v.version DESC",
                (name,)).fetchall()
        return [VersionInfo(str(row[0]), _dt(row[1]), enabled=row[2] is None) for row in rows]

    def disable_version(self, name: str, version: int) -> None:
        """Disable one version (tests use it as someone else's edit, too)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO disabled_versions VALUES (?, ?, ?)", (name, version, _ts(now())))

    def rows(self) -> list[sqlite3.Row]:
        with self._lock:
            conn = self.conn
            conn.row_factory = sqlite3.Row
            try:
                return conn.execute(
                    "SELECT s.*, (SELECT v.created_at FROM versions v WHERE v.name = s.name AND v.version = s.current_version)"
                    " AS current_version_at FROM secrets s ORDER BY s.name").fetchall()
            except sqlite3.DatabaseError as exc:
                self._reraise_damage(exc)
                raise
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
                conn.execute("DELETE FROM disabled_versions WHERE name = ?", (name,))
                conn.execute("DELETE FROM secrets WHERE name = ?", (name,))
            elif row[0] is None:
                self.store._update(conn, name, {"deleted_at": now()})

    def retire(self, request: RetireRequest) -> None:
        """Disable the version in the same transaction that removes its marker."""
        self.counter["retire"] += 1
        name, version = request.name, request.retirement.version
        with self.store.transaction() as conn:
            row = conn.execute("SELECT labels, current_version FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise LocalNotFound(f"secret {name} not found", code="NotFound")
            labels = json.loads(row[0])
            meta = decode_meta(labels)
            if meta.owner != request.stack:
                raise not_owned(request, meta.owner, managed=meta.managed)
            current = str(row[1]) if row[1] is not None else None
            if not may_retire(request, current, meta.record) or not version.isdigit():
                raise retire_refused(request)
            conn.execute("INSERT OR IGNORE INTO disabled_versions "
                         "SELECT name, version, ? FROM versions WHERE name = ? AND version = ?",
                         (_ts(now()), name, int(version)))
            kept = without_marker(meta.record, version)
            if kept is not None:
                state = SecretState(name=name, labels=meta.user_labels, description=None, expires_at=None,
                                    readers=None, protected=meta.protected, purge_on_delete=meta.purge_on_delete)
                self.store._update(conn, name, {"labels": {**meta.user_labels,
                                                           **encode_meta(request.stack, state, kept)}})

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
                base = record or ValueRecord()
                record = dataclasses.replace(base, version=str(version), written_at=base.written_at or now())
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
    limits = RateLimits(max_parallel=1)  # no quota: nothing to pace

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

    def versions(self, name: str) -> Sequence[VersionInfo] | None:
        self.api_calls["list_versions"] += 1
        return self.store.versions(name)

    def read_value(self, name: str) -> SecretValue:
        self.api_calls["get_value"] += 1
        return self.store.get_value(name)

    def target_lock(self) -> LocalTargetLock:
        return LocalTargetLock(self.target, self.store.path.with_name(self.store.path.name + ".lock"))


class LocalTargetLock(TargetLock):
    """An exclusive ``flock`` on ``<store>.lock``, which names its holder.

    The operating system releases a flock the moment its process exits, however it exits
    (SIGKILL included): the lease of a local lock ends with its holder, so there is nothing
    to renew and nothing a dead apply can leave behind. (A store on a network file system
    whose flock is not shared between machines is not protected against other machines.)
    """

    def __init__(self, target: str, path: Path) -> None:
        self.target = target
        self.path = path
        self.where = f"lock file {path}"
        self.handle: IO[str] | None = None

    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole apply
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _read_holder(handle)
            handle.close()
            return found
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"holder": holder, "pid": os.getpid(), "host": socket.gethostname(),
                                 "since": terms.clock().isoformat(timespec="seconds")}))
        handle.flush()
        self.handle = handle
        return None

    def renew(self, terms: LeaseTerms) -> None:
        if self.handle is None or self.handle.closed:
            raise LeaseLost(f"{self.path} is not held", code="LeaseLost")

    def release(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def holders(self, terms: LeaseTerms) -> list[Holder]:
        if not self.path.exists():
            return []
        with open(self.path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return [_read_holder(handle)]
            fcntl.flock(handle, fcntl.LOCK_UN)
        return []  # free: whatever the file says is from an apply that has ended

    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        if not shown:
            return []
        raise LocalStoreError(
            f"the lock of target {self.target} is held by a running process ({shown[0].holder}); "
            "cloudsync cannot remove it", code="Locked",
            hint="the operating system releases it as soon as that process exits: stop that apply instead")


def _read_holder(handle: IO[str]) -> Holder:
    handle.seek(0)
    text = handle.read(4096).strip()
    try:
        data = json.loads(text)
        who = str(data["holder"])
        if f"pid {data['pid']}" not in who:
            who += f" (pid {data['pid']} on {data['host']})"
        since: datetime | None = datetime.fromisoformat(data["since"])
    except (ValueError, KeyError, TypeError):
        who, since = text or "another process", None
    return Holder(who, since, None)

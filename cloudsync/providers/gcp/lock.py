"""The apply lock of a GCP target: a marker secret created with CreateSecret, held as a lease.

``CreateSecret`` either creates ``cloudsync-lock-<stack>`` or fails with ALREADY_EXISTS,
which makes it an atomic test-and-set in the project itself, visible to every machine. The
marker holds no value; its annotations say who holds it and since when. Its ``ttl`` is the
lease: GCP deletes the marker by itself once it expires, and the holder extends it with
``UpdateSecret`` under the marker's etag — a marker removed or replaced meanwhile fails that
precondition, so a holder never extends someone else's lock. An expired marker not yet
swept is deleted under its etag before a new one is created. Bulk reads skip it (label
``cloudsync-lock``), so it is never planned, drifted or imported.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.cloud import secretmanager
from google.protobuf import duration_pb2, field_mask_pb2

from cloudsync.providers.base import LOCK_PREFIX, ProviderError
from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.mapping import LOCK_LABEL
from cloudsync.providers.gcp.write import replication_for
from cloudsync.providers.lease import Holder, LeaseLost, LeaseTerms, TargetLock

log = logging.getLogger("cloudsync")

_GONE = ("NOT_FOUND", "FAILED_PRECONDITION", "ABORTED")


def _ttl(terms: LeaseTerms) -> duration_pb2.Duration:
    ttl = duration_pb2.Duration()
    ttl.FromTimedelta(terms.duration)
    return ttl


class GcpTargetLock(TargetLock):
    """``cloudsync-lock-<stack>`` in one project (or location)."""

    def __init__(self, client: Any, caller: Caller, parent: str, config: Any, target: str, stack: str) -> None:
        self.client = client
        self.caller = caller
        self.config = config
        self.target = target
        self.stack = stack
        self.parent = parent
        self.lock_id = LOCK_PREFIX + stack
        self.name = f"{parent}/secrets/{self.lock_id}"
        self.where = f"secret {self.lock_id} in project {config.project}"
        self.etag: str | None = None  # of our marker, once created
        self.lock_ref = str(uuid.uuid4())

    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        for _ in range(3):
            now = terms.clock()
            marker = secretmanager.Secret(
                labels={LOCK_LABEL: self.stack},
                annotations={"holder": holder[:4000], "since": now.isoformat(timespec="seconds"),
                             "lock-id": self.lock_ref},
                ttl=_ttl(terms), replication=replication_for(self.config))
            request = secretmanager.CreateSecretRequest(parent=self.parent, secret_id=self.lock_id, secret=marker)
            try:
                created = self.caller("CreateSecret", self.client.create_secret, request, resource=self.name)
                self.etag = created.etag
                return None
            except ProviderError as exc:
                if exc.code != "ALREADY_EXISTS":
                    raise
            current = self._current()
            if current is None:
                continue  # released meanwhile
            if current.holder == self.lock_ref:
                self.etag = current.ref
                return None  # our own create, retried after a lost response
            if not current.expired(now):
                return current
            log.warning("target %s: taking over the apply lock %s from %s", self.target, self.lock_id,
                        current.describe(now))
            self._delete(current.ref)
        return Holder("an apply that is starting or releasing the lock", None, None)

    def renew(self, terms: LeaseTerms) -> None:
        if self.etag is None:
            raise LeaseLost(f"{self.lock_id} is not held", code="LeaseLost")
        secret = secretmanager.Secret(name=self.name, etag=self.etag, ttl=_ttl(terms))
        request = secretmanager.UpdateSecretRequest(secret=secret, update_mask=field_mask_pb2.FieldMask(paths=["ttl"]))
        try:
            updated = self.caller("UpdateSecret", self.client.update_secret, request, resource=self.name)
        except ProviderError as exc:
            if exc.code in _GONE:
                raise LeaseLost(f"{self.lock_id} was removed or replaced", code="LeaseLost") from None
            raise
        self.etag = updated.etag

    def release(self) -> None:
        if self.etag is not None:
            try:
                self._delete(self.etag)
            finally:
                self.etag = None

    def holders(self, terms: LeaseTerms) -> list[Holder]:
        current = self._current()
        return [current] if current is not None else []

    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        return [holder for holder in shown if self._delete(holder.ref)]

    # -- helpers -----------------------------------------------------------------------

    def _current(self) -> Holder | None:
        try:
            held = self.caller("GetSecret", self.client.get_secret, secretmanager.GetSecretRequest(name=self.name),
                               resource=self.name)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        notes = held.annotations
        expires = held.expire_time if "expire_time" in held else None
        who = self.lock_ref if notes.get("lock-id") == self.lock_ref else notes.get("holder", "another process")
        return Holder(who, _moment(notes.get("since")), expires, ref=held.etag)

    def _delete(self, etag: str) -> bool:
        """Delete the marker only if it is still the one with this etag."""
        request = secretmanager.DeleteSecretRequest(name=self.name, etag=etag)
        try:
            self.caller("DeleteSecret", self.client.delete_secret, request, resource=self.name)
            return True
        except ProviderError as exc:
            if exc.code in _GONE:
                return False
            raise


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None

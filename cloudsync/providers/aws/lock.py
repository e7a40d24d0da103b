"""The apply lock of an AWS target: a marker secret created with ``CreateSecret``, held as a lease.

``CreateSecret`` either creates ``cloudsync-lock-<stack>`` or fails because the name
exists, which makes it an atomic test-and-set in the account and region, visible to every
machine. The marker holds no value; its tags say who holds it, since when, and until when
its lease runs (epoch seconds). The holder renews the lease with ``TagResource`` on the
marker's full ARN: a marker that was removed and created again has another ARN, so a
holder whose lock was taken over finds out at its next renewal instead of extending
someone else's. An expired lease is taken over by deleting that very marker (by ARN)
before creating a new one. Bulk reads skip markers: they are never planned, drifted or imported.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cloudsync.providers.aws.calls import SecretsManagerApi, is_not_found
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.remote import LOCK_TAG, tag_list, tag_map
from cloudsync.providers.base import LOCK_PREFIX, OWNER_LABEL, OWNER_VALUE, STACK_LABEL, ProviderError
from cloudsync.providers.lease import DEFAULT_LEASE, Holder, LeaseLost, LeaseTerms, TargetLock

log = logging.getLogger("cloudsync")

HOLDER_TAG = "cloudsync-lock-holder"
SINCE_TAG = "cloudsync-lock-since"
EXPIRES_TAG = "cloudsync-lock-expires"
ATTEMPTS = 6  # a force-deleted name takes a moment to become free again
RETRY_DELAY = 0.5


def _tag_value(text: str) -> str:
    # AWS tag values allow letters, digits, spaces and _ . : / = + - @ (at most 256).
    return re.sub(r"[^\w .:/=+@-]", "_", text)[:256]


def _epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


class AwsTargetLock(TargetLock):
    """``cloudsync-lock-<stack>`` in one account and region."""

    def __init__(self, api: SecretsManagerApi, reader: StateReader, target: str, stack: str,
                 before_release: Callable[[], None] | None = None) -> None:
        self.api = api
        self.before_release = before_release  # work that needs the lock still held (sync-mark bookkeeping)
        self.reader = reader
        self.target = target
        self.name = LOCK_PREFIX + stack
        self.stack = stack
        self.where = f"secret {self.name}"
        self.arn: str | None = None  # our marker, once created
        self.lock_id = str(uuid.uuid4())

    # -- TargetLock --------------------------------------------------------------------

    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        now = terms.clock()
        tags = {OWNER_LABEL: OWNER_VALUE, STACK_LABEL: self.stack, LOCK_TAG: self.lock_id,
                HOLDER_TAG: _tag_value(holder), SINCE_TAG: _epoch(now), EXPIRES_TAG: _epoch(terms.until())}
        for attempt in range(ATTEMPTS):
            try:
                created = self.api.call("CreateSecret", name=self.name, Name=self.name, Tags=tag_list(tags),
                                        Description="cloudsync apply lock (holds no value)")
                self.arn = str(created["ARN"])
                return None
            except ProviderError as exc:
                if exc.code not in ("ResourceExistsException", "InvalidRequestException"):
                    raise
            found = self.reader.describe(self.name)
            if found is not None and tag_map(found).get(LOCK_TAG) == self.lock_id:
                self.arn = str(found["ARN"])
                return None  # our own create, retried by the SDK after a lost response
            if found is not None and found.get("DeletedDate") is None:
                current = _holder(found)
                if not current.expired(now):
                    return current
                log.warning("target %s: taking over the apply lock %s from %s", self.target, self.name,
                            current.describe(now))
                self._delete(current.ref)
            time.sleep(RETRY_DELAY * (attempt + 1))  # a released or broken lock: the name frees shortly
        return Holder("an apply that is starting or releasing the lock", None, None)

    def renew(self, terms: LeaseTerms) -> None:
        if self.arn is None:
            raise LeaseLost(f"{self.name} is not held", code="LeaseLost")
        try:
            self.api.call("TagResource", name=self.name, SecretId=self.arn,
                          Tags=tag_list({EXPIRES_TAG: _epoch(terms.until())}))
        except ProviderError as exc:
            if is_not_found(exc):
                raise LeaseLost(f"{self.name} was removed", code="LeaseLost") from None
            raise

    def release(self) -> None:
        if self.arn is not None:
            try:
                if self.before_release is not None:
                    self.before_release()
            finally:
                self._delete(self.arn)
            self.arn = None

    def holders(self, terms: LeaseTerms) -> list[Holder]:
        found = self.reader.describe(self.name)
        return [_holder(found)] if found is not None and found.get("DeletedDate") is None else []

    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        removed = []
        for holder in shown:
            # A force delete of a missing secret succeeds: ask first whether that very marker still exists.
            found = self.reader.describe(holder.ref)
            if found is not None and found.get("DeletedDate") is None and self._delete(holder.ref):
                removed.append(holder)
        return removed

    # -- helpers -----------------------------------------------------------------------

    def _delete(self, arn: str) -> bool:
        """Force-delete the marker with this full ARN (not a newer marker of the same name)."""
        try:
            self.api.call("DeleteSecret", name=self.name, SecretId=arn, ForceDeleteWithoutRecovery=True)
            return True
        except ProviderError as exc:
            if is_not_found(exc):
                return False
            raise


def _holder(found: dict[str, Any]) -> Holder:
    tags = tag_map(found)
    created = found.get("CreatedDate")
    since = _from_epoch(tags.get(SINCE_TAG)) or (created if isinstance(created, datetime) else None)
    # A marker without a lease (left by an older cloudsync) expires as if never renewed.
    expires = _from_epoch(tags.get(EXPIRES_TAG)) or (since + DEFAULT_LEASE if since else datetime.fromtimestamp(0, UTC))
    return Holder(tags.get(HOLDER_TAG, "unknown"), since, expires, ref=str(found.get("ARN") or found.get("Name")))


def _from_epoch(raw: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(raw), UTC) if raw and raw.isdigit() else None

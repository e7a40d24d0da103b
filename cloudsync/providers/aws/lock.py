"""The apply lock of an AWS target: a marker secret created with ``CreateSecret``.

``CreateSecret`` either creates ``cloudsync-lock-<stack>`` or fails because the name
exists, which makes it an atomic test-and-set in the account and region, visible to every
machine. The marker holds no value; its tags say who holds it; it is force-deleted when the
apply ends. AWS has no expiry for secrets, so a marker older than :data:`LOCK_TTL` (a
process that died holding it) is taken over. Bulk reads skip markers, so they are never
planned, drifted or imported.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudsync.providers.aws.calls import SecretsManagerApi, is_not_found
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.remote import LOCK_TAG, tag_list, tag_map
from cloudsync.providers.base import LOCK_PREFIX, OWNER_LABEL, OWNER_VALUE, STACK_LABEL, LockedError, ProviderError

log = logging.getLogger("cloudsync")

HOLDER_TAG = "cloudsync-lock-holder"
LOCK_TTL = timedelta(hours=6)
ATTEMPTS = 6  # a force-deleted name takes a moment to become free again
RETRY_DELAY = 0.5


def _tag_value(text: str) -> str:
    # AWS tag values allow letters, digits, spaces and _ . : / = + - @ (at most 256).
    return re.sub(r"[^\w .:/=+@-]", "_", text)[:256]


@contextlib.contextmanager
def target_lock(api: SecretsManagerApi, reader: StateReader, target: str, stack: str,
                holder: str) -> Iterator[None]:
    """Hold the apply lock of ``stack`` in this target; raise LockedError when another apply does."""
    name = LOCK_PREFIX + stack
    lock_id = str(uuid.uuid4())
    tags = {OWNER_LABEL: OWNER_VALUE, STACK_LABEL: stack, LOCK_TAG: lock_id, HOLDER_TAG: _tag_value(holder)}
    _acquire(api, reader, target, name, tags, lock_id)
    try:
        yield
    finally:
        try:
            api.call("DeleteSecret", name=name, SecretId=name, ForceDeleteWithoutRecovery=True)
        except ProviderError as exc:
            if not is_not_found(exc):
                log.warning("target %s: could not release the apply lock %s (%s); delete it with "
                            "`aws secretsmanager delete-secret --secret-id %s --force-delete-without-recovery`",
                            target, name, exc.message, name)


def _acquire(api: SecretsManagerApi, reader: StateReader, target: str, name: str, tags: dict[str, str],
             lock_id: str) -> None:
    for attempt in range(ATTEMPTS):
        try:
            api.call("CreateSecret", name=name, Name=name, Tags=tag_list(tags),
                     Description="cloudsync apply lock (holds no value)")
            return
        except ProviderError as exc:
            if exc.code not in ("ResourceExistsException", "InvalidRequestException"):
                raise
        found = reader.describe(name)
        if found is not None and tag_map(found).get(LOCK_TAG) == lock_id:
            return  # our own create, retried by the SDK after a lost response
        if found is not None and found.get("DeletedDate") is None:
            if not _stale(found):
                raise _held(found, target, name)
            log.warning("target %s: taking over the apply lock %s, held since %s by %s", target, name,
                        found.get("CreatedDate"), tag_map(found).get(HOLDER_TAG, "?"))
            _break(api, name, found)
        time.sleep(RETRY_DELAY * (attempt + 1))  # a released or broken lock: the name frees shortly
    raise LockedError(f"target {target}: the apply lock {name} could not be taken", code="Locked",
                      hint="another apply may be starting; try again")


def _stale(found: dict[str, Any]) -> bool:
    created = found.get("CreatedDate")
    return isinstance(created, datetime) and datetime.now(UTC) - created > LOCK_TTL


def _break(api: SecretsManagerApi, name: str, found: dict[str, Any]) -> None:
    try:
        api.call("DeleteSecret", name=name, SecretId=name, ForceDeleteWithoutRecovery=True)
    except ProviderError as exc:
        if not is_not_found(exc):
            raise


def _held(found: dict[str, Any], target: str, name: str) -> LockedError:
    tags = tag_map(found)
    since = found.get("CreatedDate")
    since_text = f" since {since.isoformat()}" if isinstance(since, datetime) else ""
    return LockedError(f"target {target} is locked by another apply ({tags.get(HOLDER_TAG, 'unknown')}{since_text})",
                       code="Locked",
                       hint=f"wait for it to finish; nothing was changed. If no apply is running, delete the "
                            f"secret {name} (it is taken over by itself after {LOCK_TTL})")

"""The apply lock of a GCP target: a marker secret created with CreateSecret.

``CreateSecret`` either creates ``cloudsync-lock-<stack>`` or fails with ALREADY_EXISTS,
which makes it an atomic test-and-set in the project itself, visible to every machine. The
marker holds no value; its annotations say who holds it and since when; it is deleted when
the apply ends, and a ``ttl`` makes GCP delete it by itself should the process die. Bulk
reads skip it (label ``cloudsync-lock``), so it is never planned, drifted or imported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from google.cloud import secretmanager

from cloudsync.providers.base import LOCK_PREFIX, LockedError, ProviderError, now
from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.mapping import LOCK_LABEL
from cloudsync.providers.gcp.write import replication_for

log = logging.getLogger("cloudsync")

LOCK_TTL = timedelta(hours=6)


@contextlib.contextmanager
def target_lock(client: Any, caller: Caller, parent: str, config: Any, target: str, stack: str,
                holder: str) -> Iterator[None]:
    lock_id = LOCK_PREFIX + stack
    name = f"{parent}/secrets/{lock_id}"
    marker = secretmanager.Secret(
        labels={LOCK_LABEL: stack}, annotations={"holder": holder[:4000], "since": now().isoformat()},
        ttl=LOCK_TTL, replication=replication_for(config))
    request = secretmanager.CreateSecretRequest(parent=parent, secret_id=lock_id, secret=marker)
    try:
        created = caller("CreateSecret", client.create_secret, request, resource=name)
    except ProviderError as exc:
        if exc.code != "ALREADY_EXISTS":
            raise
        raise _held(client, caller, name, target, config.project, lock_id) from None
    try:
        yield
    finally:
        release = secretmanager.DeleteSecretRequest(name=name, etag=created.etag)
        try:
            caller("DeleteSecret", client.delete_secret, release, resource=name)
        except ProviderError as exc:
            if exc.code != "NOT_FOUND":
                log.warning("target %s: could not release the apply lock %s (%s); it expires by itself in %s",
                            target, lock_id, exc.message, LOCK_TTL)


def _held(client: Any, caller: Caller, name: str, target: str, project: str, lock_id: str) -> LockedError:
    who, since, until = "another process", "", ""
    try:
        held = caller("GetSecret", client.get_secret, secretmanager.GetSecretRequest(name=name), resource=name)
        who = held.annotations.get("holder", who)
        since = f" since {held.annotations['since']}" if "since" in held.annotations else ""
        until = f" (it expires by itself at {held.expire_time.isoformat()})" if held.expire_time else ""
    except ProviderError:
        pass  # the message below is still right without the details
    return LockedError(f"target {target} is locked by another apply ({who}{since})", code="Locked",
                       hint=f"wait for it to finish; nothing was changed. If no apply is running, delete the "
                            f"secret {lock_id} in project {project}{until}")

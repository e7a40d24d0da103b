"""The apply lock of a Key Vault target: tickets as versions of one lock secret.

Key Vault has no conditional create, so the lock is a ticket queue: an apply adds a version
to ``cloudsync-lock-<stack>`` (its value a random ticket, never a secret), then lists the
versions; a ticket holds the lock only when every other live ticket (enabled, not expired)
was created strictly after it. Version times have one-second resolution, so two tickets of
the same second both lose (both applies fail and can be rerun) rather than risk both
winning; an apply that already holds the lock is never displaced by a later ticket.
Release disables the ticket; a ticket expires by itself after :data:`LOCK_TTL`, should the
process die. The name is reserved: never planned, drifted or imported.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from cloudsync.providers.azure.errors import azure_call
from cloudsync.providers.base import LOCK_PREFIX, LockedError, ProviderError, now

log = logging.getLogger("cloudsync")

LOCK_TTL = timedelta(hours=6)


@contextlib.contextmanager
def vault_lock(client: Any, target: str, stack: str, holder: str) -> Iterator[None]:
    name = LOCK_PREFIX + stack
    since = now()
    with azure_call("set_secret", name):
        ticket = client.set_secret(name, secrets.token_hex(16), content_type="cloudsync apply lock",
                                   expires_on=since + LOCK_TTL,
                                   tags={"cloudsync-lock": stack, "holder": holder[:256], "since": since.isoformat()})
    mine = ticket.properties.version
    try:
        rival = _rival(client, name, mine, ticket.properties.created_on)
        if rival is not None:
            tags = rival.tags or {}
            raise LockedError(
                f"target {target} is locked by another apply ({tags.get('holder', 'another process')} "
                f"since {tags.get('since', '?')})", code="Locked",
                hint=f"wait for it to finish; nothing was changed. If no apply is running, disable the versions "
                     f"of {name} (they expire by themselves after {int(LOCK_TTL.total_seconds() // 3600)} h)")
        yield
    finally:
        _release(client, name, mine, target)


def _rival(client: Any, name: str, mine: str | None, created: Any) -> Any:
    """The oldest other live ticket created no later than ours, or None when ours holds the lock."""
    moment = now()
    with azure_call("list_properties_of_secret_versions", name):
        rivals = [v for v in client.list_properties_of_secret_versions(name)
                  if v.version != mine and v.enabled and v.expires_on is not None and v.expires_on > moment
                  and (created is None or v.created_on is None or v.created_on <= created)]
    return min(rivals, key=lambda v: (v.created_on, v.version or ""), default=None)


def _release(client: Any, name: str, version: str | None, target: str) -> None:
    try:
        with azure_call("update_secret_properties", name):
            client.update_secret_properties(name, version, enabled=False)
    except ProviderError as exc:
        log.warning("target %s: could not release the apply lock %s (%s); it expires by itself within %s",
                    target, name, exc.message, LOCK_TTL)

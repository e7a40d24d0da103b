"""The apply lock of a Key Vault target: tickets as versions of one lock secret, each a lease.

Key Vault has no conditional create, so the lock is a ticket queue: an apply adds a version
to ``cloudsync-lock-<stack>`` (its value a random ticket, never a secret), then lists the
versions; a ticket holds the lock only when every other live ticket (enabled, not expired)
was created strictly after it. Version times have one-second resolution, so two tickets of
the same second both lose (both applies fail and can be rerun) rather than risk both
winning; an apply that already holds the lock is never displaced by a later ticket.

A ticket's ``expires`` attribute is its lease: the holder moves it forward while it runs,
and a ticket whose holder died simply stops counting once it expires. A holder whose own
ticket expired, or was disabled by ``force-unlock``, has lost the lock. Release disables
the ticket. The name is reserved: never planned, drifted or imported.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloudsync.providers.azure.errors import azure_call
from cloudsync.providers.base import LOCK_PREFIX, NotFoundError
from cloudsync.providers.lease import Holder, LeaseLost, LeaseTerms, TargetLock


class AzureTargetLock(TargetLock):
    """``cloudsync-lock-<stack>`` in one vault."""

    def __init__(self, client: Any, target: str, stack: str) -> None:
        self.client = client
        self.target = target
        self.stack = stack
        self.name = LOCK_PREFIX + stack
        self.where = f"ticket of the secret {self.name}"
        self.ticket: str | None = None  # our version, while we hold the lock
        self.until: datetime | None = None
        self._contended = False  # once the lock was seen held, look before queueing a ticket

    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        if self._contended:
            live = self._live(terms.clock())
            if live:
                return _holder(live[0])
        since, until = terms.clock(), terms.until()
        with azure_call("set_secret", self.name):
            ticket = self.client.set_secret(self.name, secrets.token_hex(16), content_type="cloudsync apply lock",
                                            expires_on=until,
                                            tags={"cloudsync-lock": self.stack, "holder": holder[:256],
                                                  "since": since.isoformat(timespec="seconds")})
        mine, created = ticket.properties.version, ticket.properties.created_on
        rivals = [v for v in self._live(terms.clock())
                  if v.version != mine and (created is None or v.created_on is None or v.created_on <= created)]
        if rivals:
            self._contended = True
            self._disable(mine)
            return _holder(rivals[0])
        self.ticket, self.until = mine, until
        return None

    def renew(self, terms: LeaseTerms) -> None:
        if self.ticket is None or self.until is None:
            raise LeaseLost(f"{self.name} is not held", code="LeaseLost")
        if terms.clock() >= self.until:
            # Once expired, a later ticket may have taken the lock: extending ours would make two holders.
            raise LeaseLost(f"our ticket of {self.name} expired before it was renewed", code="LeaseLost")
        until = terms.until()
        try:
            with azure_call("update_secret_properties", self.name):
                updated = self.client.update_secret_properties(self.name, self.ticket, expires_on=until)
        except NotFoundError:
            raise LeaseLost(f"{self.name} was deleted", code="LeaseLost") from None
        if not updated.enabled:
            raise LeaseLost(f"our ticket of {self.name} was disabled (force-unlock)", code="LeaseLost")
        self.until = until

    def release(self) -> None:
        if self.ticket is not None:
            try:
                self._disable(self.ticket)
            finally:
                self.ticket = self.until = None

    def holders(self, terms: LeaseTerms) -> list[Holder]:
        return [_holder(v) for v in self._live(terms.clock())]

    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        live = {v.version for v in self._live(terms.clock())}
        removed = [holder for holder in shown if holder.ref in live]
        for holder in removed:
            self._disable(holder.ref)
        return removed

    # -- helpers -----------------------------------------------------------------------

    def _live(self, now: datetime) -> list[Any]:
        """Enabled, unexpired tickets, oldest first."""
        try:
            with azure_call("list_properties_of_secret_versions", self.name):
                versions = list(self.client.list_properties_of_secret_versions(self.name))
        except NotFoundError:
            return []
        live = [v for v in versions if v.enabled and v.expires_on is not None and v.expires_on > now]
        return sorted(live, key=lambda v: (v.created_on or now, v.version or ""))

    def _disable(self, version: str | None) -> None:
        with azure_call("update_secret_properties", self.name):
            self.client.update_secret_properties(self.name, version, enabled=False)


def _holder(version: Any) -> Holder:
    tags = version.tags or {}
    since = tags.get("since")
    try:
        started = datetime.fromisoformat(since) if since else version.created_on
    except ValueError:
        started = version.created_on
    return Holder(tags.get("holder", "another process"), started, version.expires_on, ref=version.version or "")

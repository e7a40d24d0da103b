"""Secret Manager's request quotas, enforced by the fake (``FakeSecretManager.enforce_quota``).

From cloud.google.com/secret-manager/quotas (checked 2026-11):

- per project: 600 read, 600 write and 90,000 access requests per minute. A write is any
  mutating call: creating, updating or deleting a secret; adding, enabling, disabling or
  destroying a version. ``SetIamPolicy`` changes the secret's policy and is counted as a write
  here too (as cloudsync's own pacing counts it: the stricter reading);
- per global secret, ``AddSecretVersion`` and ``UpdateSecret``: 2 per second; per version of a
  global secret, ``Enable``/``Disable``/``DestroySecretVersion``: 1 per second. Regional
  secrets (``/locations/`` in the name) have limits far above these and are not limited here.

A request over a quota is refused with ``RESOURCE_EXHAUSTED`` and a ``google.rpc.RetryInfo``
saying when a token is free, and takes no token. The buckets are
:class:`tests.fakes.quota.QuotaBuckets` (one second's worth each): stricter than a per-minute
window, so a client that passes them passes the service too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tests.fakes.quota import QuotaBuckets

WRITES = frozenset({"CreateSecret", "UpdateSecret", "DeleteSecret", "AddSecretVersion", "EnableSecretVersion",
                    "DisableSecretVersion", "DestroySecretVersion", "SetIamPolicy"})
READS = frozenset({"ListSecrets", "GetSecret", "ListSecretVersions", "GetSecretVersion", "GetIamPolicy",
                   "TestIamPermissions"})
PER_SECRET = frozenset({"AddSecretVersion", "UpdateSecret"})  # 2 per second per global secret
PER_VERSION = frozenset({"EnableSecretVersion", "DisableSecretVersion", "DestroySecretVersion"})  # 1 per second


def family(method: str) -> str | None:
    """The project quota ``method`` counts against (None: not a Secret Manager call)."""
    if method in WRITES:
        return "write"
    if method in READS:
        return "read"
    return "access" if method == "AccessSecretVersion" else None


class ProjectQuota:
    """The project's per-minute quotas and the per-secret limits, as token buckets."""

    def __init__(self, *, reads_per_minute: float = 600, writes_per_minute: float = 600,
                 access_per_minute: float = 90_000, per_secret_per_second: float = 2,
                 per_version_per_second: float = 1, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self.project = self._buckets({"read": reads_per_minute / 60, "write": writes_per_minute / 60,
                                      "access": access_per_minute / 60})
        self.per_secret_per_second = per_secret_per_second
        self.per_version_per_second = per_version_per_second
        self._resources: dict[str, QuotaBuckets] = {}
        self._lock = threading.Lock()

    def _buckets(self, rates: dict[str, float]) -> QuotaBuckets:
        return QuotaBuckets(rates) if self._clock is None else QuotaBuckets(rates, self._clock)

    def admit(self, method: str, resource: str) -> tuple[float, bool] | None:
        """None when the call may go; else the seconds until it could (the RetryInfo delay) and
        whether the project's quota refused it (False: the secret's or version's own limit)."""
        kind = family(method)
        if kind is None:
            return None
        limit = self._resource_limit(method, resource)
        if limit is not None:
            wait = limit.admit(["resource"])
            if wait is not None:
                self.project.throttled["per-secret"] += 1
                return wait, False
        wait = self.project.admit([kind])
        return None if wait is None else (wait, True)

    def _resource_limit(self, method: str, resource: str) -> QuotaBuckets | None:
        if "/locations/" in resource:
            return None  # a regional secret: 80 qps per secret, not modelled
        if method in PER_SECRET:
            key, rate = resource.split("/versions/", 1)[0], self.per_secret_per_second
        elif method in PER_VERSION:
            key, rate = resource, self.per_version_per_second
        else:
            return None
        with self._lock:
            found = self._resources.get(key)
            if found is None:
                found = self._resources[key] = self._buckets({"resource": rate})
            return found

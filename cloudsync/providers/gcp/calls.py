"""Every Secret Manager RPC goes through :class:`Caller`: quota pacing, retries, errors.

The client library retries only ``AccessSecretVersion`` by default, so cloudsync switches
the library's retry off and retries every call itself: RESOURCE_EXHAUSTED, UNAVAILABLE,
DEADLINE_EXCEEDED and INTERNAL a few times with jittered exponential backoff (honouring
the ``google.rpc.RetryInfo`` delay when the service sends one), then surfaces them as
transient :class:`ProviderError` so the apply engine can retry the whole change. Calls are
paced to the project's published quotas so a large plan never trips them: one token bucket
per quota family at 95 % of it (:func:`cloudsync.ratelimit.buckets`, bursting to 0.2 s of it),
plus Secret Manager's per-secret limits on global secrets (2 ``AddSecretVersion``/``UpdateSecret``
per second per secret, 1 state change per second per version). A ``RESOURCE_EXHAUSTED`` with a
``RetryInfo`` pauses its family for every caller, since every other caller would be refused too.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from cloudsync.providers.base import ErrorKind, ProviderError
from cloudsync.providers.gcp.catalog import METHODS, Quota, permission_of
from cloudsync.providers.gcp.errors import translate
from cloudsync.ratelimit import BURST_SECONDS, DEFAULT_HEADROOM, RateLimiter, buckets

log = logging.getLogger("cloudsync")

T = TypeVar("T")

CALL_TIMEOUT = 30.0
ATTEMPTS = 4
BASE_DELAY = 0.25
MAX_DELAY = 10.0
MAX_RETRY_AFTER = MAX_DELAY * 3  # the longest RetryInfo delay honoured (a service's answer is bounded too)
PER_SECRET = frozenset({"AddSecretVersion", "UpdateSecret"})
PER_VERSION = frozenset({"EnableSecretVersion", "DisableSecretVersion", "DestroySecretVersion"})


@dataclass(frozen=True)
class QuotaLimits:
    """Requests per minute per project, and per secret; paced at ``headroom`` of each."""

    reads_per_minute: float = 600
    writes_per_minute: float = 600
    access_per_minute: float = 90_000
    writes_per_secret_per_second: float = 2  # AddSecretVersion / UpdateSecret on global secrets
    # Resource Manager and IAM reads of the access scan (a handful per target): paced well
    # below those APIs' own per-project read quotas.
    iam_reads_per_minute: float = 600
    asset_searches_per_minute: float = 400  # Cloud Asset Inventory SearchAllIamPolicies
    asset_lists_per_minute: float = 100  # Cloud Asset Inventory ListAssets
    headroom: float = DEFAULT_HEADROOM
    versions_per_second: float = 1  # Enable/Disable/DestroySecretVersion per version of a global secret

    def per_second(self, quota: Quota) -> float:
        per_minute = {Quota.READ: self.reads_per_minute, Quota.WRITE: self.writes_per_minute,
                      Quota.ACCESS: self.access_per_minute, Quota.IAM_READ: self.iam_reads_per_minute,
                      Quota.ASSET_SEARCH: self.asset_searches_per_minute,
                      Quota.ASSET_LIST: self.asset_lists_per_minute}[quota]
        return per_minute * self.headroom / 60


class Caller:
    """Paces, counts, retries and translates the RPCs of one target."""

    def __init__(self, target: str, project: str, limits: QuotaLimits, counter: Counter[str],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self.project = project
        self.limits = limits
        self.counter = counter
        self.sleep = sleep
        self._count_lock = threading.Lock()
        # Paced at ``headroom`` of each quota (per_second applies it), bursting to 0.2 s of it:
        # the service's own bucket stays nearly full, so bunched requests are not refused.
        self._buckets = buckets({q: limits.per_second(q) for q in Quota}, headroom=1.0)
        self._per_resource: dict[str, RateLimiter] = {}
        self._per_resource_lock = threading.Lock()

    def _bucket(self, method: str) -> RateLimiter:
        spec = METHODS.get(method)
        return self._buckets[spec.quota if spec else Quota.READ]

    def _pace(self, method: str, resource: str, request: Any) -> None:
        self._bucket(method).acquire()
        limited = self._resource_limit(method, resource, request)
        if limited is not None:
            limited.acquire()

    def _resource_limit(self, method: str, resource: str, request: Any) -> RateLimiter | None:
        """The per-secret (or per-version) limiter of a global secret's write, else None."""
        if method in PER_SECRET:
            key, rate = resource, self.limits.writes_per_secret_per_second
        elif method in PER_VERSION:
            key, rate = str(getattr(request, "name", "") or resource), self.limits.versions_per_second
        else:
            return None
        if "/locations/" in key:
            return None  # regional secrets: 80 and 50 per second, far above any one change's needs
        with self._per_resource_lock:
            bucket = self._per_resource.get(key)
            if bucket is None:
                rate *= self.limits.headroom
                bucket = self._per_resource[key] = RateLimiter(rate, rate * BURST_SECONDS)
            return bucket

    def __call__(self, method: str, fn: Callable[..., T], request: Any, *, resource: str,
                 attempts: int = ATTEMPTS) -> T:
        """Call ``fn(request=...)``; return its result or raise ProviderError (never an SDK error)."""
        attempt = 0
        while True:
            attempt += 1
            self._pace(method, resource, request)
            with self._count_lock:
                self.counter[method] += 1
            try:
                return fn(request=request, retry=None, timeout=CALL_TIMEOUT)
            except (gexc.GoogleAPICallError, gexc.RetryError, auth_exc.GoogleAuthError) as exc:
                error = self.translate(method, resource, exc)
            if error.kind is ErrorKind.THROTTLED and error.retry_after is not None:
                # Everyone waits: the quota is shared. Bounded like the caller's own wait.
                self._bucket(method).pause(min(error.retry_after, MAX_RETRY_AFTER))
            if not error.transient or attempt >= attempts:
                raise error
            delay = backoff(attempt, error.retry_after)
            log.debug("%s on %s: %s, retrying in %.2fs", method, resource, error.code, delay)
            self.sleep(delay)

    def translate(self, method: str, resource: str, exc: Exception) -> ProviderError:
        """A ProviderError for ``exc``: the service's message, never the request's payload."""
        return translate(method, resource, exc, target=self.target, project=self.project,
                         permission=permission_of(method))


def backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(MAX_RETRY_AFTER, max(0.0, retry_after))
    return random.uniform(BASE_DELAY, min(MAX_DELAY, BASE_DELAY * 2 ** attempt))

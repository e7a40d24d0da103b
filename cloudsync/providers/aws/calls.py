"""Every Secrets Manager call goes through :class:`SecretsManagerApi`.

One place paces calls to the published quotas (per account-region bucket, shared by every
target that points at the same place), counts them for benchmarks, retries idempotent
reads on transient errors, and maps failures to :class:`ProviderError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from botocore import xform_name

from cloudsync.providers.aws.actions import ACTIONS, FOREIGN_BUCKETS, QUOTAS, READ_BUCKETS, Bucket
from cloudsync.providers.aws.errors import THROTTLING_CODES, map_error
from cloudsync.providers.base import ProviderError
from cloudsync.providers.quotas import AwsQuotas
from cloudsync.ratelimit import DEFAULT_HEADROOM, RateLimiter, buckets

READ_ATTEMPTS = 4  # on top of botocore's own standard-mode retries, for idempotent reads only
READ_BACKOFF = 0.25
MAX_BACKOFF = 10.0
# AWS's buckets refill every second and its throttling answers carry no Retry-After.
THROTTLE_PAUSE = 1.0


_PACERS: dict[tuple[Any, ...], dict[Bucket, RateLimiter]] = {}
_PACERS_LOCK = threading.Lock()


def quotas_of(overrides: AwsQuotas) -> dict[Bucket, float]:
    """The published quota of each family, with a target's overrides applied (Secrets Manager's only)."""
    return {bucket: rate if bucket in FOREIGN_BUCKETS
            else (overrides.reads_per_second if bucket in READ_BUCKETS else overrides.writes_per_second) or rate
            for bucket, rate in QUOTAS.items()}


def pacer(key: tuple[Any, ...], overrides: AwsQuotas | None = None,
          headroom: float = DEFAULT_HEADROOM) -> Mapping[Bucket, RateLimiter]:
    """The quota buckets of one account-region (targets pointing at one place share them)."""
    overrides = overrides or AwsQuotas()
    scale = overrides.headroom or headroom
    quotas = quotas_of(overrides)
    with _PACERS_LOCK:
        full_key = (*key, scale, tuple(sorted(quotas.items())))
        found = _PACERS.get(full_key)
        if found is None:
            found = _PACERS[full_key] = buckets(quotas, headroom=scale)
        return found


class SecretsManagerApi:
    """The calls of one target."""

    def __init__(self, target: str, client: Any, buckets: Mapping[Bucket, RateLimiter],
                 counter: Counter[str]) -> None:
        self.target = target
        self.client = client
        self.buckets = buckets
        self.counter = counter
        self._count_lock = threading.Lock()
        self.clock_offset = 0.0  # AWS's clock minus ours, from response Date headers

    def call(self, operation: str, *, name: str | None = None, carries_value: bool = False,
             idempotent: bool = False, **params: Any) -> dict[str, Any]:
        """Call ``operation``; raise ProviderError on failure (retrying transient ones if idempotent)."""
        action = ACTIONS[operation]  # an operation missing from the table is a bug, not a call
        method = getattr(self.client, xform_name(operation))
        attempt = 0
        while True:
            attempt += 1
            self.buckets[action.bucket].acquire()
            with self._count_lock:
                self.counter[operation] += 1
            try:
                response: dict[str, Any] = method(**params)
                self._observe_clock(response)
                return response
            except Exception as exc:  # noqa: BLE001 - mapped below; anything unknown is re-raised there
                error = map_error(exc, target=self.target, operation=operation, iam_action=action.iam_action,
                                  name=name, carries_value=carries_value, endpoint=self.client.meta.endpoint_url)
            if is_throttled(error):
                # Every caller in this family would be refused too: pause the family, not just this call.
                self.buckets[action.bucket].pause(error.retry_after if error.retry_after is not None
                                                  else THROTTLE_PAUSE)
            if not (idempotent and error.transient and attempt < READ_ATTEMPTS):
                raise error
            time.sleep(_backoff(attempt, error))


    def _observe_clock(self, response: Mapping[str, Any]) -> None:
        raw = (response.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("date")
        try:
            server = parsedate_to_datetime(raw).timestamp() if raw else None
        except (TypeError, ValueError):
            server = None
        if server is not None:
            self.clock_offset = server - time.time()

    def server_now(self) -> float:
        """AWS's clock as last seen in a response's Date header (one-second resolution), else ours."""
        return time.time() + self.clock_offset


def is_throttled(error: ProviderError) -> bool:
    return error.code in THROTTLING_CODES


def is_not_found(error: ProviderError) -> bool:
    return error.code == "ResourceNotFoundException"


def _backoff(attempt: int, error: ProviderError) -> float:
    if error.retry_after is not None:
        return min(MAX_BACKOFF, max(0.0, error.retry_after))
    return random.uniform(0, min(MAX_BACKOFF, READ_BACKOFF * 2 ** attempt))

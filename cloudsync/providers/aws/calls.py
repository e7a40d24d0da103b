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
from typing import Any

from botocore import xform_name

from cloudsync.providers.aws.actions import ACTIONS, HEADROOM, QUOTAS, Bucket
from cloudsync.providers.aws.errors import map_error
from cloudsync.providers.base import ProviderError
from cloudsync.ratelimit import RateLimiter

READ_ATTEMPTS = 4  # on top of botocore's own standard-mode retries, for idempotent reads only
READ_BACKOFF = 0.25
MAX_BACKOFF = 10.0


_PACERS: dict[tuple[Any, ...], dict[Bucket, RateLimiter]] = {}
_PACERS_LOCK = threading.Lock()


def pacer(key: tuple[Any, ...], scale: float = HEADROOM) -> Mapping[Bucket, RateLimiter]:
    """The quota buckets of one account-region (targets pointing at one place share them)."""
    with _PACERS_LOCK:
        found = _PACERS.get((*key, scale))
        if found is None:
            found = {bucket: RateLimiter(rate * scale) for bucket, rate in QUOTAS.items()}
            _PACERS[(*key, scale)] = found
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
                return response
            except Exception as exc:  # noqa: BLE001 - mapped below; anything unknown is re-raised there
                error = map_error(exc, target=self.target, operation=operation, iam_action=action.iam_action,
                                  name=name, carries_value=carries_value, endpoint=self.client.meta.endpoint_url)
            if not (idempotent and error.transient and attempt < READ_ATTEMPTS):
                raise error
            time.sleep(_backoff(attempt, error))


def is_not_found(error: ProviderError) -> bool:
    return error.code == "ResourceNotFoundException"


def _backoff(attempt: int, error: ProviderError) -> float:
    if error.retry_after is not None:
        return min(MAX_BACKOFF, max(0.0, error.retry_after))
    return random.uniform(0, min(MAX_BACKOFF, READ_BACKOFF * 2 ** attempt))

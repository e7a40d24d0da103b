"""Token buckets: how every adapter paces its calls to a cloud's published quotas.

Design (shared by the adapters): each adapter knows its cloud's *operation families* (the
groups of API operations that share one published quota: AWS's 50-TPS write bucket, a Key
Vault's transactions per 10 s, a GCP project's writes per minute) and takes one token from
that family's :class:`RateLimiter` in its client call wrapper, for every request it sends.
The apply engine therefore limits only how many changes run at once, never changes per
second: a change that costs three operations takes three tokens. :func:`buckets` builds a
family table paced at a share (``headroom``) of the quotas, and a throttling answer's
``Retry-After`` pauses the whole family (:meth:`RateLimiter.pause`), not just the caller
that was told, since every other caller would be refused too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

K = TypeVar("K")

# A share of each published quota: other tools share the account, project or vault, and a
# quota is enforced over windows the client cannot see exactly.
DEFAULT_HEADROOM = 0.95
_EPSILON = 1e-9
# A small burst: the cloud's own bucket stays nearly full, so requests that reach it bunched
# (threads, connection reuse, a retry) are not refused; a refusal costs a whole second of
# Retry-After, far more than a burst saves.
BURST_SECONDS = 0.2


class RateLimiter:
    """``rate`` requests per second, bursting to ``burst`` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("a rate limiter needs a positive rate")
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.stamp = clock()
        self.paused_until = self.stamp
        self.lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until a request may go."""
        while True:
            with self.lock:
                current = self.clock()
                if current < self.paused_until:
                    wait = self.paused_until - current
                else:
                    self.tokens = min(self.capacity, self.tokens + (current - self.stamp) * self.rate)
                    self.stamp = current
                    if self.tokens >= 1 - _EPSILON:  # rounding must not leave a wait too short to pass
                        self.tokens = max(0.0, self.tokens - 1)
                        return
                    wait = (1 - self.tokens) / self.rate
            self.sleep(wait)

    def pause(self, seconds: float) -> None:
        """The service said "retry after ``seconds``": no caller takes a token before then.

        The bucket restarts empty, so calls resume at the paced rate instead of in a burst
        that would be throttled again.
        """
        with self.lock:
            current = self.clock()
            until = current + max(0.0, seconds)
            if until > self.paused_until:
                self.paused_until = until
                self.tokens = 0.0
                self.stamp = until


def buckets(quotas: Mapping[K, float], *, headroom: float = DEFAULT_HEADROOM,
            burst_seconds: float = BURST_SECONDS, clock: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> dict[K, RateLimiter]:
    """One limiter per operation family, paced at ``headroom`` of its quota (requests per second),
    bursting to ``burst_seconds`` of it."""
    return {family: RateLimiter(rate * headroom, rate * headroom * burst_seconds, clock=clock, sleep=sleep)
            for family, rate in quotas.items()}

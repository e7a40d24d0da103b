"""A cloud's request quota, enforced by a fake: one token bucket per operation family.

Each bucket refills at the published rate and holds one second's worth (stricter than a
quota counted over a longer window, so a client that passes it passes the cloud's too). A
request that finds a bucket empty is refused, as the cloud refuses it, and the caller is
told how long until a token is free; refused requests take no token (Key Vault documents
that throttled requests do not count, and AWS's buckets behave alike). What was served and
refused is counted per family, for the benchmarks' share of the quota.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping


class QuotaBuckets:
    """Server-side token buckets per family (requests per second)."""

    def __init__(self, rates: Mapping[str, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.rates = dict(rates)
        self.clock = clock
        start = clock()
        self.tokens = dict(self.rates)
        self.stamps = dict.fromkeys(self.rates, start)
        self.served: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.lock = threading.Lock()

    def admit(self, families: Iterable[str]) -> float | None:
        """None when the request may go (a token taken from each family); else seconds to wait."""
        wanted = [f for f in families if f in self.rates]
        with self.lock:
            now = self.clock()
            for family in wanted:
                rate = self.rates[family]
                self.tokens[family] = min(rate, self.tokens[family] + (now - self.stamps[family]) * rate)
                self.stamps[family] = now
            short = [f for f in wanted if self.tokens[f] < 1]
            if short:
                for family in short:
                    self.throttled[family] += 1
                return max((1 - self.tokens[f]) / self.rates[f] for f in short)
            for family in wanted:
                self.tokens[family] -= 1
                self.served[family] += 1
            return None

    @staticmethod
    def retry_after_header(wait: float) -> str:
        """Whole seconds, as the clouds send Retry-After (at least 1)."""
        return str(max(1, math.ceil(wait)))

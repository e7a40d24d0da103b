"""A token bucket, the one rate limiter used by the apply engine and the adapters."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """``rate`` requests per second, bursting to ``burst`` (default: one second's worth)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        """Wait until a request may go."""
        while True:
            with self.lock:
                current = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (current - self.stamp) * self.rate)
                self.stamp = current
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)

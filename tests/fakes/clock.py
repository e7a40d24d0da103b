"""A clock for pacing tests: time moves only when a caller sleeps, and every wait is recorded."""

from __future__ import annotations


class FakeClock:
    """Pass it as ``clock`` and its :meth:`sleep` as ``sleep`` (see cloudsync.ratelimit)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

"""The token buckets every adapter paces its calls with, driven by a fake clock."""

from __future__ import annotations

import pytest

from cloudsync.ratelimit import RateLimiter, buckets
from tests.fakes.clock import FakeClock


def limiter(clock: FakeClock, rate: float, burst: float | None = None) -> RateLimiter:
    return RateLimiter(rate, burst, clock=clock, sleep=clock.sleep)


def test_requests_are_spaced_at_the_rate_once_the_burst_is_spent() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10.0, burst=1.0)
    for _ in range(3):
        bucket.acquire()
    assert clock.now == pytest.approx(0.2)  # 3 requests at 10/s with a burst of 1: two waits of 0.1 s


def test_a_configured_quota_is_never_exceeded_over_any_second() -> None:
    clock = FakeClock()
    bucket = buckets({"write": 50.0}, headroom=0.9, clock=clock, sleep=clock.sleep)["write"]
    stamps = []
    for _ in range(500):
        bucket.acquire()
        stamps.append(clock.now)
    # A burst of 0.2 s worth (9), then 45/s: 90 % of the 50/s quota, and no second holds more
    # than 45 + 9 requests, inside what a bucket of one second at 50/s admits.
    assert stamps[-1] == pytest.approx((500 - 9) / 45, rel=1e-6)
    for i, start in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t < start + 1.0)
        assert in_window <= 54


def test_retry_after_pauses_every_caller_then_resumes_at_the_rate() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=10.0, burst=10.0)
    bucket.acquire()
    bucket.pause(3.0)  # the service said "Retry-After: 3"
    bucket.acquire()
    assert clock.now == pytest.approx(3.1)  # nothing before 3 s, and the bucket restarts empty
    bucket.acquire()
    assert clock.now == pytest.approx(3.2)


def test_a_shorter_retry_after_does_not_shorten_a_pause() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rate=100.0)
    bucket.pause(2.0)
    bucket.pause(0.5)
    bucket.acquire()
    assert clock.now >= 2.0


def test_a_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0.0)

"""Holding a lease: waiting for a held lock, renewing in the background, giving up a lock that cannot be trusted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from cloudsync.providers.base import LockedError, ProviderError
from cloudsync.providers.lease import (
    Holder,
    LeaseLost,
    LeaseTerms,
    TargetLock,
    hold,
    lease_from_env,
    parse_wait,
)
from tests.providers.leases import Clock


class ScriptedLock(TargetLock):
    """A lock whose answers a test scripts: busy for a number of attempts, renewals that fail."""

    def __init__(self, busy_for: int = 0, renew_error: ProviderError | None = None) -> None:
        self.target = "t"
        self.where = "scripted lock"
        self.busy_for = busy_for
        self.renew_error = renew_error
        self.attempts = self.renewals = self.releases = 0

    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        self.attempts += 1
        if self.attempts <= self.busy_for:
            return Holder("another apply", terms.clock(), terms.clock() + timedelta(minutes=1))
        return None

    def renew(self, terms: LeaseTerms) -> None:
        self.renewals += 1
        if self.renew_error is not None:
            raise self.renew_error

    def release(self) -> None:
        self.releases += 1

    def holders(self, terms: LeaseTerms) -> list[Holder]:
        return []

    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        return []


def test_a_held_lock_fails_at_once_without_lock_timeout() -> None:
    clock = Clock()
    lock = ScriptedLock(busy_for=1)
    with pytest.raises(LockedError) as raised, hold(lock, "me", LeaseTerms(clock=clock, sleep=clock_sleep(clock))):
        pass
    assert "target t is locked by another apply (another apply since" in raised.value.message
    assert "waited" not in raised.value.message and "--lock-timeout" in (raised.value.hint or "")
    assert lock.attempts == 1 and lock.releases == 0


def test_lock_timeout_waits_until_the_lock_is_free() -> None:
    clock = Clock()
    lock = ScriptedLock(busy_for=5)
    terms = LeaseTerms(duration=timedelta(minutes=2), wait=timedelta(minutes=5), clock=clock,
                       sleep=clock_sleep(clock))
    start = clock()
    with hold(lock, "me", terms) as lease:
        assert not lease.lost.is_set()
    assert lock.attempts == 6 and lock.releases == 1
    assert timedelta(0) < clock() - start < timedelta(minutes=5)


def test_lock_timeout_gives_up_at_its_deadline() -> None:
    clock = Clock()
    lock = ScriptedLock(busy_for=1000)
    terms = LeaseTerms(wait=timedelta(seconds=30), clock=clock, sleep=clock_sleep(clock))
    with pytest.raises(LockedError) as raised, hold(lock, "me", terms):
        pass
    assert "(waited 30s)" in raised.value.message


def test_a_lease_taken_over_or_removed_is_lost_at_the_next_renewal() -> None:
    lock = ScriptedLock(renew_error=LeaseLost("removed by force-unlock"))
    with hold(lock, "me", LeaseTerms(duration=timedelta(seconds=0.2))) as lease:
        assert lease.lost.wait(timeout=10)
        assert lease.reason is not None and "removed by force-unlock" in lease.reason
    assert lock.renewals == 1 and lock.releases == 1


def test_a_lease_that_cannot_be_renewed_is_given_up_before_it_expires() -> None:
    lock = ScriptedLock(renew_error=ProviderError("connection reset", transient=True))
    terms = LeaseTerms(duration=timedelta(seconds=0.4))
    with hold(lock, "me", terms) as lease:
        assert lease.lost.wait(timeout=10)
        assert lease.reason == "the apply lock could not be renewed before its lease ran out"
    assert lock.renewals >= 1 and lock.releases == 1


def test_a_renewed_lease_stays_held() -> None:
    lock = ScriptedLock()
    with hold(lock, "me", LeaseTerms(duration=timedelta(seconds=0.2))) as lease:
        while lock.renewals < 5:
            assert not lease.lost.wait(timeout=0.05)
    assert not lease.lost.is_set()


@pytest.mark.parametrize(("text", "seconds"), [("0", 0), ("45s", 45), ("45", 45), ("5min", 300), ("1h", 3600)])
def test_durations_of_waits_and_leases(text: str, seconds: int) -> None:
    assert parse_wait(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5 minutes", "-1s", "1d", "1.5min", "05min", "5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_wait(text)


def test_the_lease_duration_comes_from_the_environment_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lease_from_env() == timedelta(minutes=2)
    monkeypatch.setenv("CLOUDSYNC_LOCK_LEASE", "90s")
    assert lease_from_env() == timedelta(seconds=90)
    monkeypatch.setenv("CLOUDSYNC_LOCK_LEASE", "0")
    with pytest.raises(ValueError, match="outside"):
        lease_from_env()


def test_holder_text_is_shown_without_control_characters() -> None:
    clock = Clock()
    holder = Holder("evil\x1b[2J\rNo changes.\n" + "x" * 500, None, clock() + timedelta(seconds=30))
    shown = holder.describe(clock())
    assert "\x1b" not in shown and "\r" not in shown and "\n" not in shown and len(shown) < 260


def clock_sleep(clock: Clock) -> object:
    return lambda seconds: clock.advance(timedelta(seconds=seconds))

"""The lease contract every target's apply lock keeps, checked against each cloud's real SDK.

Time is a :class:`Clock` the test moves (and, where the server judges expiry itself, the
fake server reads too), so a lease expires without the test sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cloudsync.providers.lease import DEFAULT_LEASE, LeaseLost, LeaseTerms, TargetLock


class Clock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def timestamp(self) -> float:
        return self.now.timestamp()


def check_lease_contract(make: Callable[[], TargetLock], clock: Clock, duration: timedelta = DEFAULT_LEASE) -> None:
    """Held while renewed, taken over once its holder stops renewing, removed only as shown."""
    terms = LeaseTerms(duration=duration, clock=clock)
    first, second = make(), make()
    assert first.acquire("first apply", terms) is None
    held = second.acquire("second apply", terms)
    assert held is not None and held.holder == "first apply" and not held.expired(clock())
    assert "first apply since" in held.describe(clock()) and "its lease expires in" in held.describe(clock())

    # Renewed, it stays held past the end of its first lease.
    clock.advance(duration * 3 / 4)
    first.renew(terms)
    clock.advance(duration / 2)
    assert second.acquire("second apply", terms) is not None

    # Its holder dies (no renewal): once the lease has run out, the next apply takes the lock over.
    clock.advance(duration + timedelta(seconds=1))
    assert second.acquire("second apply", terms) is None
    with pytest.raises(LeaseLost):
        first.renew(terms)  # the holder that was taken over finds out instead of extending someone else's lock
    second.renew(terms)

    # force-unlock removes exactly the lock it showed, never one taken meanwhile.
    shown = make().holders(terms)
    assert [h.holder for h in shown] == ["second apply"]
    second.release()
    third = make()
    assert third.acquire("third apply", terms) is None
    assert make().remove(shown, terms) == []
    current = make().holders(terms)
    assert [h.holder for h in current] == ["third apply"]
    assert [h.holder for h in make().remove(current, terms)] == ["third apply"]
    with pytest.raises(LeaseLost):
        third.renew(terms)
    assert make().holders(terms) == []
    fourth = make()
    assert fourth.acquire("fourth apply", terms) is None
    fourth.release()
    assert make().holders(terms) == []

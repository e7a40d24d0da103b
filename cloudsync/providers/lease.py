"""Apply locks as leases: held while their holder renews them, free soon after it dies.

Every target keeps its apply lock inside the target itself (a marker secret, a ticket, a
lock file), so every machine sees it. A provider implements the small :class:`TargetLock`
interface; :func:`hold` is the one place that waits for a lock, renews it in a background
thread and releases it.

A lease records when it expires. The holder extends it every ``duration / 4``; a process
that dies (SIGKILL, a lost runner) stops renewing, and the next apply takes the lock over
once the lease has expired — minutes, not hours. A holder that cannot renew stops trusting
its lease a renewal period *before* it expires, so two holders never both believe they
hold one lock while their clocks agree to within that period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cloudsync.config.durations import WAIT_UNITS, parse_duration
from cloudsync.interrupts import main_thread_only
from cloudsync.providers.base import LockedError, ProviderError

log = logging.getLogger("cloudsync")

LEASE_ENV = "CLOUDSYNC_LOCK_LEASE"
DEFAULT_LEASE = timedelta(minutes=2)
MIN_LEASE = timedelta(seconds=1)
MAX_LEASE = timedelta(hours=1)
MAX_POLL = 5.0  # seconds between two attempts while waiting for a lock (--lock-timeout)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_wait(text: str) -> timedelta:
    """``0``, ``45s``, ``5min``, ``1h`` (a bare number is seconds); ValueError otherwise."""
    return parse_duration(text, WAIT_UNITS, bare_seconds=True)


def lease_from_env() -> timedelta:
    """The lease duration: ``CLOUDSYNC_LOCK_LEASE`` (e.g. ``90s``, ``5min``) or :data:`DEFAULT_LEASE`."""
    raw = os.environ.get(LEASE_ENV, "").strip()
    if not raw:
        return DEFAULT_LEASE
    duration = parse_wait(raw)
    if not MIN_LEASE <= duration <= MAX_LEASE:
        raise ValueError(f"{LEASE_ENV}={raw} is outside {int(MIN_LEASE.total_seconds())}s..{MAX_LEASE}")
    return duration


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a target's lock; ``ref`` identifies that very lock for removal."""

    holder: str
    since: datetime | None
    expires: datetime | None  # None: the operating system frees it when the holder exits
    ref: str = ""

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def describe(self, now: datetime) -> str:
        """A one-line description; the holder text comes from the target, so it is shown bounded and
        without control characters."""
        who = _CONTROL.sub("?", self.holder)[:200]
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        if self.expires is None:
            return f"{who}{since}"
        left = self.expires - now
        state = (f"its lease expires in {_span(left)}" if left > timedelta(0)
                 else f"its lease expired {_span(-left)} ago")
        return f"{who}{since}; {state}"


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


class LeaseLost(ProviderError):
    """The lock is no longer ours (removed by force-unlock, or taken over after expiry)."""


@dataclass(frozen=True)
class LeaseTerms:
    """How long a lease lasts, how long to wait for a held lock, and the clock (tests move it)."""

    duration: timedelta = DEFAULT_LEASE
    wait: timedelta = timedelta(0)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep

    @property
    def renew_every(self) -> float:
        return self.duration.total_seconds() / 4

    def until(self) -> datetime:
        return self.clock() + self.duration


class TargetLock(ABC):
    """One target's apply lock, kept in the target. Implementations are small and stateful:
    after a successful :meth:`acquire` they remember what identifies their own lock."""

    target: str
    where: str  # what the lock is, for messages: "secret cloudsync-lock-payments in ..."

    @abstractmethod
    def acquire(self, holder: str, terms: LeaseTerms) -> Holder | None:
        """Take the lock until ``terms.until()``: None when taken, else the live holder.

        A lease that has expired is taken over (removed only if it is still that lease)."""

    @abstractmethod
    def renew(self, terms: LeaseTerms) -> None:
        """Extend our lease to ``terms.until()``; raise LeaseLost when it is not ours any more."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (a lock already gone is fine)."""

    @abstractmethod
    def holders(self, terms: LeaseTerms) -> list[Holder]:
        """Who holds the lock now, expired leases included (for force-unlock)."""

    @abstractmethod
    def remove(self, shown: Sequence[Holder], terms: LeaseTerms) -> list[Holder]:
        """Remove exactly the locks in ``shown`` (not a newer one taken meanwhile); return those removed."""


@dataclass
class Lease:
    """A held lock. ``lost`` is set once it can no longer be trusted; apply then starts nothing new."""

    target: str
    lost: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None

    def lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.reason = reason
            self.lost.set()
            log.warning("target %s: %s; no new change is started", self.target, reason)


def locked_error(lock: TargetLock, found: Holder, now: datetime, waited: timedelta) -> LockedError:
    after = f" (waited {_span(waited)})" if waited > timedelta(0) else ""
    return LockedError(
        f"target {lock.target} is locked by another apply ({found.describe(now)}){after}", code="Locked",
        hint=f"wait for it to finish (or pass --lock-timeout to wait); nothing was changed. If no apply is "
             f"running, `cloudsync force-unlock --target {lock.target}` removes the {lock.where}"
             + ("" if found.expires is None else "; it also expires by itself"))


@contextlib.contextmanager
def hold(lock: TargetLock, holder: str, terms: LeaseTerms, deadline: datetime | None = None) -> Iterator[Lease]:
    """Hold ``lock`` (waiting until ``deadline`` while another apply holds it), renewing it until exit."""
    started = terms.clock()
    deadline = deadline if deadline is not None else started + terms.wait
    waiting = False
    while True:
        expires = terms.until()  # no later than the lease acquire() writes
        found = lock.acquire(holder, terms)
        if found is None:
            break
        now = terms.clock()
        if now >= deadline:
            raise locked_error(lock, found, now, now - started if deadline > started else timedelta(0))
        poll = min(MAX_POLL, terms.renew_every / 2) * random.uniform(0.75, 1.0)
        if not waiting:
            log.warning("target %s is locked by another apply (%s); waiting up to %s", lock.target,
                        found.describe(now), _span(deadline - now))
        waiting = True
        terms.sleep(max(0.01, min(poll, (deadline - now).total_seconds())))
    lease = Lease(lock.target)
    stopped = threading.Event()
    renewer = threading.Thread(target=_renew, args=(lock, lease, terms, stopped, expires), daemon=True,
                               name=f"cloudsync-lease-{lock.target}")
    renewer.start()
    try:
        yield lease
    finally:
        stopped.set()
        renewer.join(timeout=30)
        try:
            lock.release()
        except ProviderError as exc:
            log.warning("target %s: could not release the apply lock (%s); it expires by itself, or run "
                        "`cloudsync force-unlock --target %s`", lock.target, exc.message, lock.target)


def _renew(lock: TargetLock, lease: Lease, terms: LeaseTerms, stopped: threading.Event,
           expires: datetime) -> None:
    """Extend the lease every ``renew_every`` seconds until ``stopped``; give it up when it cannot be trusted."""
    main_thread_only()
    interval = terms.renew_every
    while not stopped.wait(interval):
        attempt = terms.until()
        try:
            lock.renew(terms)
            expires = attempt
            continue
        except LeaseLost as exc:
            lease.lose(f"the apply lock is no longer ours ({exc.message})")
            return
        except ProviderError as exc:
            log.warning("target %s: could not renew the apply lock (%s); retrying", lock.target, exc.message)
        except Exception as exc:  # noqa: BLE001 - a renewal bug must not kill the thread silently
            log.warning("target %s: could not renew the apply lock (%s)", lock.target, exc.__class__.__name__)
        if terms.clock() + timedelta(seconds=interval) >= expires:
            lease.lose("the apply lock could not be renewed before its lease ran out")
            return

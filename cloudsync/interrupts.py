"""SIGINT and SIGTERM end an apply the same careful way.

CI cancellation and ``timeout`` send SIGTERM; a person presses Ctrl-C (SIGINT). Before any
write has started, either signal unwinds the command at once (locks are released on the
way out). Once apply is writing, a signal only sets a flag: the changes in flight finish,
no new change starts (they end ``not-attempted``), the locks are released, the report and
the audit record are written, and the command exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, TypeVar

log = logging.getLogger("cloudsync")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")
R = TypeVar("R")


class Interrupted(KeyboardInterrupt):
    """A signal arrived before apply started writing: unwind, changing nothing more."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Stop:
    """A stop request shared by the signal handlers and the apply workers."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None
        self._writing = False

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """While apply writes, a signal stops new changes instead of unwinding at once."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        first = self.signal is None
        self.signal = self.signal or name
        self.event.set()
        if not self._writing:
            raise Interrupted(name)
        if first:
            log.warning("%s received: finishing the changes in flight and starting no new one", name)


def main_thread_only() -> None:
    """Block SIGINT and SIGTERM in the calling (worker) thread.

    The operating system may deliver a process signal to any thread that does not block
    it; Python then runs the handler only when the main thread next wakes up, which can be
    after a worker has started another change. Blocked in workers, the signal goes to the
    main thread, interrupts its wait, and the stop flag is set at once.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNALS))


def in_workers(func: Callable[[T], R], items: Iterable[T], limit: int) -> list[R]:
    """``func`` of each item, in order: on the calling thread for one item, else on up to
    ``limit`` worker threads that leave signals to the main thread (:func:`main_thread_only`)."""
    items = list(items)
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), initializer=main_thread_only) as pool:
        return list(pool.map(func, items))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Stop]:
    """Route SIGINT and SIGTERM to a :class:`Stop` (only the main thread can install handlers)."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous: dict[signal.Signals, Any] = {}
    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, stop.handle)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

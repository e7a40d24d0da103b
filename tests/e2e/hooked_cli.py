"""The real ``cloudsync`` CLI whose provider of one kind pauses at chosen points (for e2e tests).

Run as a script: ``python hooked_cli.py <cloudsync args>``. The adapter of kind
``HOOK_KIND`` (``local`` or ``aws``) is replaced by a subclass of the real one that, driven
by files in the folder ``HOOK_DIR``, lets a test stop a process exactly where a race or a
kill matters — no SDK is patched, every call still goes to the real store or server:

- ``HOOK_PAUSE_LOCK=1``: before taking the apply lock, create ``at-lock`` and wait for ``go-lock``;
- ``HOOK_BLOCK_AT=N``: before the N-th write of a declared secret, create ``at-write`` and
  wait for ``go-write`` (the fingerprint key and lock are not counted);
- always: once cloudsync's signal handler has run, create ``signalled`` (so a test knows the
  stop request is recorded before it lets a blocked write go on).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cloudsync.providers import registry
from cloudsync.providers.base import ValueRecord, WriteRequest, is_reserved

HOOK_DIR = Path(os.environ.get("HOOK_DIR", "."))
_state = {"paused": False, "writes": 0}
_guard = threading.Lock()


def _wait_for(name: str) -> None:
    marker = HOOK_DIR / name
    while not marker.exists():
        time.sleep(0.01)


def _arrive(name: str) -> None:
    (HOOK_DIR / name).touch()


def _pause_before_lock() -> None:
    with _guard:
        if _state["paused"] or os.environ.get("HOOK_PAUSE_LOCK") != "1":
            return
        _state["paused"] = True
    _arrive("at-lock")
    _wait_for("go-lock")


def _before_write(request: WriteRequest) -> None:
    if is_reserved(request.name):
        return
    with _guard:
        _state["writes"] += 1
        count = _state["writes"]
    if count == int(os.environ.get("HOOK_BLOCK_AT", "0")):
        _arrive("at-write")
        _wait_for("go-write")


def hooked(base: type[Any]) -> type[Any]:
    class Hooked(base):  # type: ignore[misc, valid-type]
        def lock(self, *args: Any, **kwargs: Any) -> contextlib.AbstractContextManager[Any]:
            _pause_before_lock()
            return super().lock(*args, **kwargs)  # type: ignore[no-any-return]

        def target_lock(self) -> Any:
            _pause_before_lock()
            return super().target_lock()

        def apply(self, request: WriteRequest) -> ValueRecord | None:
            _before_write(request)
            return super().apply(request)  # type: ignore[no-any-return]

    return Hooked


def _observe_signals() -> None:
    from cloudsync.interrupts import Stop

    handle = Stop.handle

    def observed(self: Stop, signum: int, frame: Any) -> None:
        try:
            handle(self, signum, frame)
        finally:
            _arrive("signalled")

    Stop.handle = observed  # type: ignore[method-assign]


def main() -> None:
    _observe_signals()
    kind = os.environ.get("HOOK_KIND", "local")
    base = registry.provider_class(kind)
    globals()["Hooked"] = hooked(base)
    registry.ADAPTERS[kind] = (__name__, "Hooked", None)
    from cloudsync.cli import app

    sys.argv[0] = "cloudsync"
    app()


if __name__ == "__main__":
    main()

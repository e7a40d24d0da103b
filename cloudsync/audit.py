"""The audit log: JSON lines appended as an apply happens, never a value.

Each event is one ``write`` on a file opened with ``O_APPEND``: it reaches the operating
system the moment it happens, so an apply that is killed (SIGKILL included) still leaves a
true record of every change it started and finished. Events (see docs/security.md):

- ``apply-start``: who, where, which stack, plan digest, targets, number of changes;
- ``change-start``: a change is about to make its first call to the target;
- ``change``: its outcome (``applied``, ``failed`` with the error, ``not-attempted``);
- ``apply-end``: the summary line, with every change's outcome.

A ``change-start`` with no ``change`` after it was in flight when the process died: the
target may or may not hold it; the next plan shows which.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.providers.base import now

log = logging.getLogger("cloudsync")

AUDIT_ENV = "CLOUDSYNC_AUDIT_LOG"


def actor() -> str:
    """Who runs this apply: CLOUDSYNC_ACTOR, GITHUB_ACTOR, or the OS user."""
    for var in ("CLOUDSYNC_ACTOR", "GITHUB_ACTOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def audit_path(root: Path) -> Path:
    configured = os.environ.get(AUDIT_ENV)
    return Path(configured) if configured else root / ".cloudsync" / "audit.jsonl"


class AuditLog:
    """One apply's events, appended to the log file as they happen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.apply_id = uuid.uuid4().hex[:16]
        self._lock = threading.Lock()
        self._warned = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CloudsyncError(Diagnostic(f"cannot open the audit log {path}: {exc.strerror}; nothing was changed",
                                            hint=f"make its folder writable, or point {AUDIT_ENV} elsewhere")) from None

    def event(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Append one event line (the caller never passes a value)."""
        line = json.dumps({"event": kind, "apply": self.apply_id, "time": now().isoformat(), **fields},
                          separators=(",", ":"), ensure_ascii=True) + "\n"
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, line.encode("ascii"))
            except OSError as exc:
                if not self._warned:
                    log.warning("could not append to the audit log %s: %s", self.path, exc.strerror)
                    self._warned = True

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    @staticmethod
    def whoami() -> dict[str, Any]:
        return {"actor": actor(), "host": socket.gethostname(), "pid": os.getpid()}

"""The CLI in a subprocess under a memory cap and a timeout, for hostile input.

A regression of a hostile-input fix must fail the test, not exhaust the machine's memory
or hang CI: the child gets ``RLIMIT_AS`` of :data:`MEMORY_CAP` and is killed after
``timeout`` seconds (reported as exit code ``-9`` and ``timed_out``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CLI

MEMORY_CAP = 1 << 30  # 1 GiB: the bound for any input


@dataclass
class BoundedResult:
    code: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def signal(self) -> int | None:
        """The signal that ended the child (SIGSEGV, SIGKILL, ...), if one did."""
        return -self.code if self.code < 0 else None


# The cap is set by a small launcher that then execs the CLI, rather than by a preexec_fn: a
# preexec_fn forces a fork of the (large) test process, and the child's peak memory would
# then count the parent's pages too (what benchmarks/fuzz.py reports would be the parent's).
_LAUNCH = "import os, resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap})); os.execv(sys.argv[1], sys.argv[1:])"


def run_bounded(*args: str, cwd: Path | None = None, timeout: float = 60) -> BoundedResult:
    """Run ``cloudsync ARGS`` with at most 1 GiB of memory and ``timeout`` seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    try:
        launcher = [sys.executable, "-c", _LAUNCH.format(cap=MEMORY_CAP), CLI]
        proc = subprocess.run([*launcher, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        def text(data: bytes | str | None) -> str:
            return data.decode(errors="replace") if isinstance(data, bytes) else data or ""

        return BoundedResult(-signal.SIGKILL, text(exc.stdout), text(exc.stderr), timed_out=True)
    return BoundedResult(proc.returncode, proc.stdout, proc.stderr)

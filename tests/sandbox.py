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
import tempfile
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
    max_rss_mib: float | None = None  # the CLI's own peak resident memory

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def signal(self) -> int | None:
        """The signal that ended the child (SIGSEGV, SIGKILL, ...), if one did."""
        return -self.code if self.code < 0 else None


# The launcher sets the cap, forks the CLI and reports the CLI's own peak memory. Not a
# preexec_fn, nor a launcher that just execs: a process started from the (large) test process
# carries that process's peak into its own ru_maxrss at exec; a grandchild forked from the
# small launcher does not. The launcher ends the way the CLI did (same code, same signal).
_LAUNCH = """
import os, resource, signal, sys
cap, report, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
pid = os.fork()
if pid == 0:
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as handle:
    handle.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
"""


def run_bounded(*args: str, cwd: Path | None = None, timeout: float = 60) -> BoundedResult:
    """Run ``cloudsync ARGS`` with at most 1 GiB of memory and ``timeout`` seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        command = [sys.executable, "-c", _LAUNCH, str(MEMORY_CAP), report.name, CLI, *args]
        # A session of its own, so a timeout kills the launcher and the CLI together.
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return BoundedResult(-signal.SIGKILL, stdout, stderr, timed_out=True)
        rss = report.read().strip()
    return BoundedResult(proc.returncode, stdout, stderr, max_rss_mib=int(rss) / 1024 if rss else None)

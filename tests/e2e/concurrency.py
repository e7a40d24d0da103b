"""Run ``cloudsync`` processes side by side, stop them where a race or a kill matters, read the audit log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

from tests.conftest import CLI

HOOKED = Path(__file__).with_name("hooked_cli.py")
REPO = Path(__file__).resolve().parents[2]


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSYNC_", "HOOK_"))}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO)]))
    env.update(extra)
    return env


@dataclass
class Proc:
    """A cloudsync process started in the background."""

    popen: subprocess.Popen[str]

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        out, err = self.popen.communicate(timeout=timeout)
        return self.popen.returncode, out + err

    def signal(self, sig: signal.Signals) -> None:
        self.popen.send_signal(sig)


def start(args: list[str], env: dict[str, str], *, cwd: Path, hooked: bool = False) -> Proc:
    command = [sys.executable, str(HOOKED), *args] if hooked else [CLI, *args]
    popen = subprocess.Popen(command, cwd=cwd, env=environment(env), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    return Proc(popen)


def start_hooked(args: list[str], env: dict[str, str], *, cwd: Path, hooks: Path,
                 **switches: str) -> Proc:
    """Start tests/e2e/hooked_cli.py, its pause points driven by files in ``hooks`` (see there)."""
    hooks.mkdir(exist_ok=True)
    return start(args, {**env, "HOOK_DIR": str(hooks), **switches}, cwd=cwd, hooked=True)


def wait_for(path: Path, proc: Proc, timeout: float = 60) -> None:
    """Wait until ``path`` exists (the hooked process reached its pause), failing if it exited first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.popen.poll() is not None:
            code, output = proc.finish()
            raise AssertionError(f"the process exited ({code}) before reaching {path.name}:\n{output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path.name}")
        time.sleep(0.01)


def audit_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def writers(events: list[dict[str, object]]) -> Counter[str]:
    """Applied changes per apply (by its audit id): who actually wrote."""
    return Counter(str(e.get("apply", i)) for i, e in enumerate(events)
                   if (e.get("event") == "change" and e["outcome"] == "applied")
                   or ("event" not in e and any(c["outcome"] == "applied" for c in e["changes"])))  # one-line records


def lost_race(code: int, output: str) -> bool:
    """The apply that did not get to write: it failed on the lock or a stale plan, or found nothing to do."""
    return ((code == 1 and ("locked by another apply" in output or "is stale" in output))
            or (code == 0 and "Nothing to apply." in output))


def together(*applies: Callable[[], None]) -> list[int]:
    """Run the ``cloudsync apply`` command functions in threads released at the same instant.

    In process, so a test can afford many trials; each apply has its own session, lock
    handle and audit file descriptor, exactly as separate processes have. Returns each
    one's exit code (0 when it returned)."""
    barrier = threading.Barrier(len(applies))
    codes: list[int | BaseException] = [0] * len(applies)

    def run(index: int) -> None:
        barrier.wait()
        try:
            applies[index]()
        except typer.Exit as exc:
            codes[index] = exc.exit_code
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            codes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(applies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    unexpected = [c for c in codes if isinstance(c, BaseException)]
    assert not unexpected, unexpected
    return [int(c) for c in codes]  # type: ignore[arg-type]

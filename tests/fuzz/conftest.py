"""Shared settings of the fuzz suite: how many cases, and what they cost.

Every fuzz test decorates itself with :data:`FUZZ` (a hypothesis ``settings`` object), so
one environment variable scales the whole suite:

- ``CLOUDSYNC_FUZZ_EXAMPLES`` (default 50): examples per in-process fuzz test. CI keeps
  the default (a few seconds in all); ``benchmarks/fuzz.py`` runs 20,000 and more.
- :data:`CLI_EXAMPLES` — examples of a test that runs the CLI in a subprocess — is derived
  from it (one in 50, at least 3), since each costs a Python start;
  ``CLOUDSYNC_FUZZ_CLI_EXAMPLES`` sets it directly.
- ``CLOUDSYNC_FUZZ_STATS=FILE``: when set, each test's cases (count, slowest, failures)
  and the peak memory of this process and of its children are written to FILE as JSON at
  the end of the session (what ``benchmarks/fuzz.py`` reports; run it without ``-n``).
  Record a case with :func:`timed`.

A case the fuzzer finds is kept as a regression fixture (``regressions/``), so it runs on
every CI run whatever the random draw.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings

EXAMPLES = max(1, int(os.environ.get("CLOUDSYNC_FUZZ_EXAMPLES", "50")))
CLI_EXAMPLES = max(1, int(os.environ.get("CLOUDSYNC_FUZZ_CLI_EXAMPLES", "0"))) \
    if os.environ.get("CLOUDSYNC_FUZZ_CLI_EXAMPLES") else max(3, EXAMPLES // 50)
CASE_SECONDS = 10.0
"""No case may take longer (the issue's bound for a hang); hypothesis fails a slower one."""

_COMMON = {
    "deadline": timedelta(seconds=CASE_SECONDS),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                              HealthCheck.function_scoped_fixture],
    "print_blob": True,  # a failure prints the @reproduce_failure line to replay it
}
settings.register_profile("cloudsync-fuzz", max_examples=EXAMPLES, **_COMMON)
settings.register_profile("cloudsync-fuzz-cli", max_examples=CLI_EXAMPLES, **_COMMON)
FUZZ = settings.get_profile("cloudsync-fuzz")
FUZZ_CLI = settings.get_profile("cloudsync-fuzz-cli")


@dataclass
class CaseStats:
    cases: int = 0
    failures: int = 0
    max_seconds: float = 0.0  # wall time: on a loaded machine this includes waiting for a core
    max_cpu_seconds: float = 0.0  # this process's CPU time (a CLI case's is mostly its child's)
    slowest_case: str = ""


STATS: dict[str, CaseStats] = {}


@contextmanager
def timed(test: str, case: object = "") -> Iterator[None]:
    """Count one case of ``test`` and its time (a failing case counts as a failure; shrinking reruns count too)."""
    stats = STATS.setdefault(test, CaseStats())
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    except BaseException:
        stats.failures += 1
        raise
    finally:
        stats.cases += 1
        seconds = time.perf_counter() - started
        stats.max_cpu_seconds = max(stats.max_cpu_seconds, time.process_time() - cpu)
        if seconds > stats.max_seconds:
            stats.max_seconds = seconds
            stats.slowest_case = repr(case)[:300]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("CLOUDSYNC_FUZZ_STATS")
    if not target or not STATS:  # under xdist the controller ran no case: leave the file to a worker
        return
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN is the largest child waited for.
    report = {
        "tests": {name: asdict(s) for name, s in STATS.items()},
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "max_child_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "exitstatus": int(exitstatus),
    }
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)

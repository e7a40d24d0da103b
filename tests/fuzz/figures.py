"""What the fuzz suite tried: cases per test, failing cases, the slowest case, peak memory.

A pytest plugin (registered in ``tests/conftest.py``, so the xdist controller has it too).
A fuzz test counts each case with :func:`timed`; after each test its figures travel with
the test's report (so they reach the controller from xdist workers), the end of the run
prints one line per fuzz test, and ``CLOUDSYNC_FUZZ_STATS=FILE`` writes them as JSON
(what ``benchmarks/fuzz.py`` reports).
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import pytest

_PROPERTY = "cloudsync_fuzz"


@dataclass
class CaseStats:
    cases: int = 0
    failures: int = 0  # failing cases, shrinking reruns included
    max_seconds: float = 0.0  # wall time: on a loaded machine this includes waiting for a core
    max_cpu_seconds: float = 0.0  # this process's CPU time (a CLI case's is mostly its child's)
    slowest_case: str = ""
    max_child_rss_mib: float = 0.0  # the largest CLI run's own peak memory (see tests/sandbox.py)

    def merge(self, other: CaseStats) -> None:
        self.cases += other.cases
        self.failures += other.failures
        self.max_cpu_seconds = max(self.max_cpu_seconds, other.max_cpu_seconds)
        self.max_child_rss_mib = max(self.max_child_rss_mib, other.max_child_rss_mib)
        if other.max_seconds > self.max_seconds:
            self.max_seconds, self.slowest_case = other.max_seconds, other.slowest_case


STATS: dict[str, CaseStats] = {}
"""This process's figures, by the name a test gives :func:`timed`."""


@contextmanager
def timed(test: str, case: object = "") -> Iterator[None]:
    """Count one case of ``test`` and its time (a failing case counts as a failure)."""
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


def child_memory(test: str, mib: float | None) -> None:
    """Record the peak memory of a CLI run of ``test`` (``BoundedResult.max_rss_mib``)."""
    stats = STATS.setdefault(test, CaseStats())
    stats.max_child_rss_mib = max(stats.max_child_rss_mib, mib or 0.0)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    STATS.clear()
    yield
    if STATS:
        item.user_properties.append((_PROPERTY, {
            "tests": {name: asdict(s) for name, s in STATS.items()},
            "max_rss_mib": _max_rss_mib()}))
        STATS.clear()  # shipped with this test's report


def _collect(reporter: Any) -> dict[str, Any]:
    tests: dict[str, CaseStats] = {}
    rss = 0.0
    for reports in reporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":  # teardown reports carry the same properties
                continue
            for key, value in getattr(report, "user_properties", ()):
                if key != _PROPERTY:
                    continue
                for name, figures in value["tests"].items():
                    tests.setdefault(name, CaseStats()).merge(CaseStats(**figures))
                rss = max(rss, value["max_rss_mib"])
    return {"tests": {n: asdict(s) for n, s in sorted(tests.items())}, "max_rss_mib": rss,
            "max_child_rss_mib": max((s.max_child_rss_mib for s in tests.values()), default=0.0)}


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    figures = _collect(terminalreporter)
    if not figures["tests"]:
        return
    terminalreporter.section("fuzz cases tried")
    for name, s in figures["tests"].items():
        terminalreporter.write_line(f"{name}: {s['cases']} cases, {s['failures']} failing, "
                                    f"slowest {s['max_seconds'] * 1000:.0f} ms")
    terminalreporter.write_line(f"peak memory: {figures['max_rss_mib']:.0f} MiB in a test process, "
                                f"{figures['max_child_rss_mib']:.0f} MiB in a CLI child")
    target = os.environ.get("CLOUDSYNC_FUZZ_STATS")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({**figures, "exitstatus": int(exitstatus)}, handle, indent=2)

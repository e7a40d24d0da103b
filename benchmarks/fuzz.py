"""Run the fuzz suite long and report what it tried.

    python benchmarks/fuzz.py [--examples 7000] [--cli-examples 300] [--only loader]

Runs ``tests/fuzz`` with ``CLOUDSYNC_FUZZ_EXAMPLES`` set (CI runs the default 50): each
in-process fuzz test draws that many cases (three loader tests: 21,000 loader cases at the
default), each CLI fuzz test ``--cli-examples`` (``validate`` in a subprocess). Prints, per test, the cases tried, the failing cases and
the slowest case, then the peak memory of the test process and of the largest CLI child,
and exits with pytest's status. Bounds the issue asks for: no case over 10 s, nothing over
1 GiB, no traceback or signal (a failing case is printed by hypothesis with the line that
replays it; keep it in tests/fuzz/regressions/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=7_000, help="examples per in-process fuzz test")
    parser.add_argument("--cli-examples", type=int, default=300, help="examples per CLI fuzz test")
    parser.add_argument("--only", default=None, help="a pytest -k expression, e.g. loader")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "stats.json"
        env = {**os.environ, "CLOUDSYNC_FUZZ_EXAMPLES": str(args.examples),
               "CLOUDSYNC_FUZZ_CLI_EXAMPLES": str(args.cli_examples), "CLOUDSYNC_FUZZ_STATS": str(stats_file)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz"]
        if args.only:
            command += ["-k", args.only]
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, env=env, check=False)
        seconds = time.perf_counter() - started
        if not stats_file.exists():
            print("the fuzz suite wrote no figures (did it fail to start?)", file=sys.stderr)
            return proc.returncode or 1
        report = json.loads(stats_file.read_text())

    print(f"\nfuzz run: {args.examples} examples per in-process test, {args.cli_examples} per CLI test, "
          f"{seconds:.0f} s in all")
    print(f"{'test':<32} {'cases':>8} {'failing':>8} {'slowest (wall)':>15} {'slowest (cpu)':>14}")
    total = failing = 0
    slowest = 0.0
    for name, figures in sorted(report["tests"].items()):
        total += figures["cases"]
        failing += figures["failures"]
        slowest = max(slowest, figures["max_seconds"])
        print(f"{name:<32} {figures['cases']:>8} {figures['failures']:>8} {figures['max_seconds'] * 1000:>12.1f} ms "
              f"{figures['max_cpu_seconds'] * 1000:>11.1f} ms")
    print(f"{'all':<32} {total:>8} {failing:>8} {slowest * 1000:>12.1f} ms")
    for name, figures in sorted(report["tests"].items()):
        print(f"slowest case of {name}: {figures['slowest_case']}")
    print(f"peak memory: test process {report['max_rss_mib']:.0f} MiB (hypothesis included), "
          f"largest CLI child {report['max_child_rss_mib']:.0f} MiB")
    print(f"pytest exit status: {report['exitstatus']}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())

"""What the engine costs with no cloud in the way: a large local stack, and the CLI's start.

    python benchmarks/core_plan.py [--sizes 1000,10000] [--repeat 5] [--phases]

For each size N, a stack of N secrets (half generated, half from an environment variable,
every one with a reader) is written, planned and applied once against the local provider;
then the plan of the unchanged stack (load, validate, read, plan, built-in policy pack) runs
``--repeat`` times, each in a fresh interpreter so its memory and CPU are its own, in the
order the CLI runs it (the policy evaluation begins before the plan is built). Reported:
the median wall time, the CPU time of the process and of its policy evaluator (a child
process, see docs/security.md), the peak resident memory of the process, and the load
average before and after (wall times are only comparable at a low load).

The CLI's start is ``cloudsync plan`` of ``examples/quickstart`` in a fresh process (median
wall and CPU of ``--repeat`` runs, after one run that writes the bytecode caches a wheel
install has).

Goals (issue 14): the 10,000-secret unchanged plan in <= 3 s wall on a 2-core machine
with a peak of <= 200 MiB; the quickstart plan in <= 0.3 s.
``--phases`` also prints the time of each phase of one run, for profiling by eye.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VALUE_ENV = "BENCH_VALUE"
GOALS = {"plan_seconds": 3.0, "plan_mib": 200, "start_seconds": 0.3}


def write_stack(root: Path, count: int) -> None:
    lines = [
        "version: 1",
        "stack: bench",
        "targets:",
        "  local: {provider: local, path: .cloudsync/local.db}",
        "principals:",
        "  api: {}",
        "  worker: {}",
        "defaults:",
        "  labels: {owner: team-bench}",
        "  rotation: 90d",
    ]
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")
    secrets_dir = root / "secrets"
    secrets_dir.mkdir()
    per_file = 1000
    for start in range(0, count, per_file):
        body = ["secrets:"]
        for i in range(start, min(count, start + per_file)):
            value = f"{{env: {VALUE_ENV}}}" if i % 2 else "{generate: {length: 32}}"
            body += [
                f"  - name: team{i % 50}/service{i}/password",
                f"    description: benchmark secret {i}",
                "    targets: [local]",
                f"    labels: {{env: {'staging' if i % 3 == 0 else 'dev'}, tier: t{i % 5}}}",
                f"    value: {value}",
                f"    readers: [{'api' if i % 2 else 'worker'}]",
            ]
        (secrets_dir / f"part{start // per_file:03d}.yaml").write_text("\n".join(body) + "\n")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: with .pyc
    env.setdefault(VALUE_ENV, "benchmark-value-not-a-secret")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _seed(root: Path, count: int) -> None:
    """Write the stack and apply it, so the measured plans find every secret unchanged."""
    write_stack(root, count)
    script = ("import sys\nfrom cloudsync.apply import apply_plan\nfrom cloudsync.config.loader import load_stack\n"
              "from cloudsync.plan.build import build_plan, open_session, select_targets\n"
              "stack = load_stack(sys.argv[1])\n"
              "with open_session(stack) as s:\n"
              "    apply_plan(s, build_plan(s, select_targets(stack, None)), parallelism=4)\n")
    subprocess.run([sys.executable, "-c", script, str(root)], check=True, env=_env(), cwd=root)


def measure_plan(root: Path, phases: bool = False) -> dict[str, Any]:
    """One unchanged plan with its policies, in this process (run by :func:`_fresh_plan` in a child)."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import build_plan, open_session, select_targets
    from cloudsync.policy.budget import prestart
    from cloudsync.policy.engine import begin

    marks: dict[str, float] = {}

    def mark(label: str) -> None:
        marks[label] = time.perf_counter() - start_wall - sum(marks.values())

    from cloudsync.gc_pause import freeze_survivors

    freeze_survivors()  # as the CLI's entry point does
    prestart()  # as the CLI does: the evaluator starts while the files load
    mark("imports")
    stack = load_stack(root)
    mark("load + validate")
    targets = select_targets(stack, None)
    evaluation = begin(stack, targets)  # as the CLI does: policies run while the plan is built
    mark("policy: documents sent")
    with open_session(stack) as session:
        run = build_plan(session, targets)
    mark("read + plan")
    report = evaluation.finish(run)
    mark("policy: the rest")
    assert not run.plan.real_changes, "the stack should be unchanged"
    wall = time.perf_counter() - start_wall
    cpu = time.process_time() - start_cpu
    from cloudsync.policy.budget import _retire, evaluator_cpu_seconds

    evaluator = evaluator_cpu_seconds() or 0.0
    _retire()
    return {"wall": wall, "cpu": cpu, "evaluator_cpu": evaluator, "evaluated": report.evaluated,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "phases": marks if phases else {}}


def _fresh_plan(root: Path, phases: bool = False) -> dict[str, Any]:
    args = [sys.executable, __file__, "--measure", str(root), *(["--phases"] if phases else [])]
    done = subprocess.run(args, check=True, env=_env(), cwd=root, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _cli_command() -> list[str]:
    script = Path(sys.executable).parent / "cloudsync"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from cloudsync.cli import run; run()"]


def measure_start(repeat: int) -> dict[str, Any]:
    """``cloudsync plan`` of the quickstart, in fresh processes: median wall and CPU (with its evaluator)."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = Path(tmp) / "quickstart"
        shutil.copytree(ROOT / "examples" / "quickstart", stack, ignore=shutil.ignore_patterns(".cloudsync"))
        env = {**_env(), "QUICKSTART_SMTP_PASSWORD": "not-a-real-password"}
        command = [*_cli_command(), "plan", "-C", str(stack)]
        subprocess.run(command, check=True, env=env, capture_output=True)  # writes bytecode caches
        walls, cpus, peaks = [], [], []
        for _ in range(repeat):
            start = time.perf_counter()
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(process.pid, 0)
            walls.append(time.perf_counter() - start)
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
            cpus.append(usage.ru_utime + usage.ru_stime)  # its evaluator is waited for, so counted too
            peaks.append(usage.ru_maxrss / 1024)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "peak_mib": max(peaks)}


def _load_average() -> str:
    """The 1-minute load average now: wall times mean little without it (CPU times do not depend on it)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover - not on this platform
        return "?"


def rows(sizes: list[int], repeat: int = 5, phases: bool = False) -> list[dict[str, Any]]:
    """One row per size (the unchanged plan), and one for the CLI's start."""
    out: list[dict[str, Any]] = []
    for count in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            _seed(root, count)
            load_before = _load_average()
            runs = [_fresh_plan(root, phases and i == 0) for i in range(repeat)]
        if phases:
            print(f"phases of one {count}-secret plan: "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in runs[0]["phases"].items()), file=sys.stderr)
        wall = statistics.median(r["wall"] for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        goal = count == 10_000
        out.append({
            "measure": "unchanged local plan + built-in policies",
            "N": count,
            f"wall, median of {repeat} (s)": round(wall, 2),
            "CPU: process + evaluator (s)": (f"{statistics.median(r['cpu'] for r in runs):.2f} + "
                                             f"{statistics.median(r['evaluator_cpu'] for r in runs):.2f}"),
            "peak RSS (MiB)": round(peak),
            "load avg (1 min) before/after": f"{load_before}/{_load_average()}",
            "goal": (f"<= {GOALS['plan_seconds']:g} s, <= {GOALS['plan_mib']} MiB: "
                     + ("met" if wall <= GOALS["plan_seconds"] and peak <= GOALS["plan_mib"] else "NOT met"))
            if goal else "",
        })
    load_before = _load_average()
    start = measure_start(repeat)
    out.append({
        "measure": "CLI start: `cloudsync plan` of examples/quickstart",
        "N": 3,
        f"wall, median of {repeat} (s)": round(start["wall"], 2),
        "CPU: process + evaluator (s)": f"{start['cpu']:.2f}",
        "peak RSS (MiB)": round(start["peak_mib"]),
        "load avg (1 min) before/after": f"{load_before}/{_load_average()}",
        "goal": f"<= {GOALS['start_seconds']:g} s: " + ("met" if start["wall"] <= GOALS["start_seconds"] else "NOT met"),
    })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of secrets")
    parser.add_argument("--repeat", type=int, default=5, help="fresh runs per measure (the median is shown)")
    parser.add_argument("--phases", action="store_true", help="print the time of each phase of one run")
    parser.add_argument("--measure", metavar="STACK", help=argparse.SUPPRESS)  # one run, in a child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_plan(Path(args.measure), args.phases)))
        return 0
    table = rows([int(s) for s in args.sizes.split(",")], args.repeat, args.phases)
    keys = list(table[0])
    print(" | ".join(keys))
    for row in table:
        print(" | ".join(str(row[k]) for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())

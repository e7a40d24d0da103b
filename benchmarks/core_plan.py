"""Load, validate, plan and render a large stack against the local provider.

    python benchmarks/core_plan.py [--secrets 10000]

Prints wall time per phase and peak memory for the first plan (everything is created),
the apply, and the plan of the unchanged stack after it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session, select_targets
from cloudsync.plan.render import render_json, render_markdown, render_text
from cloudsync.policy import evaluate

T = TypeVar("T")


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
            value = "{env: BENCH_VALUE}" if i % 2 else "{generate: {length: 32}}"
            body += [
                f"  - name: team{i % 50}/service{i}/password",
                f"    description: benchmark secret {i}",
                "    targets: [local]",
                f"    labels: {{env: {'staging' if i % 3 == 0 else 'dev'}, tier: t{i % 5}}}",
                f"    value: {value}",
                f"    readers: [{'api' if i % 2 else 'worker'}]",
            ]
        (secrets_dir / f"part{start // per_file:03d}.yaml").write_text("\n".join(body) + "\n")


def timed(label: str, func: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = func()
    print(f"  {label:<34} {time.perf_counter() - start:8.3f} s")
    return result


def one_phase(root: Path, *, apply: bool) -> None:
    stack = timed("load + validate", lambda: load_stack(root))
    with open_session(stack) as session:
        planned = timed("read actual + plan", lambda: build_plan(session, select_targets(stack, None)))
        policy = timed("policy evaluation (built-in pack)", lambda: evaluate(stack, planned))
        print(f"  policy: {len(policy.violations)} violations over {policy.evaluated} addresses")
        timed("render text", lambda: render_text(planned.plan))
        timed("render json", lambda: render_json(planned.plan))
        timed("render markdown", lambda: render_markdown(planned.plan))
        print(f"  summary: {planned.plan.summary()}")
        if apply:
            report = timed("apply", lambda: apply_plan(session, planned, parallelism=4))
            print(f"  applied {sum(1 for r in report.results if r.outcome.value == 'applied')} changes")


def run(count: int) -> None:
    os.environ.setdefault("BENCH_VALUE", "benchmark-value-not-a-secret")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_stack(root, count)
        print(f"stack of {count} secrets, local provider")
        for phase in ("first plan (all create)", "unchanged plan (after apply)"):
            print(phase)
            one_phase(root, apply=phase.startswith("first"))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak memory (max RSS): {peak_kib / 1024:.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    args = parser.parse_args()
    run(args.secrets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a plan of an unchanged AWS stack costs: wall time and API calls by operation.

Starts the tests' moto server on 127.0.0.1 (with its CloudTrail event history, which
journals every Secrets Manager write it serves, the seeding apply's included), applies a
stack of N secrets with cloudsync (quota pacing lifted, to seed quickly), then plans the
unchanged stack with each access_drift mode, unpaced. Secrets Manager and CloudTrail calls
are counted with botocore's ``before-call`` event hook (the access scan's one IAM call per
1,000 principals or so is not among them) and compared with a per-secret refresh (~3 calls
per secret: DescribeSecret, GetSecretValue, GetResourcePolicy, as Terraform's provider does).

    .venv/bin/python benchmarks/aws_plan.py [--sizes 1000,10000] [--modes default,all,declared]

``default`` is the target without ``access_drift`` (``changed``: CloudTrail's event history).

Per N and access_drift mode it prints the calls, the issue's goal (ceil(N/100) + k + 10), the
time at cloudsync's pace of the published quotas (95 %; the slowest family sets it), and the
Terraform model: three calls per secret, the GetResourcePolicy ones alone 50/s.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fakes live in the repository

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.actions import ACTIONS, QUOTAS, Bucket
from cloudsync.providers.base import RateLimits
from cloudsync.ratelimit import DEFAULT_HEADROOM
from tests.fakes import moto_server

READERS_EVERY = 10  # one secret in ten declares a reader
REFRESH_CALLS_PER_SECRET = 3
FAKE_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@dataclass
class PlanFigures:
    seconds: float
    calls: Counter[str]
    changes: int
    unchanged: int


def start_moto() -> str:
    """moto, one request at a time, with CloudTrail's event history (tests/fakes/cloudtrail.py)."""
    return moto_server.start_moto().url


def reset(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")) as response:
        response.read()


def write_stack(root: Path, url: str, size: int, access_drift: str = "default") -> None:
    root.mkdir(parents=True, exist_ok=True)
    mode = "" if access_drift == "default" else f", access_drift: {access_drift}"
    (root / "cloudsync.yaml").write_text(
        "version: 1\nstack: bench\n"
        f"targets:\n  aws-bench: {{provider: aws, region: us-east-1, endpoint: \"{url}\"{mode}}}\n"
        "principals:\n  app: {aws: \"arn:aws:iam::123456789012:role/app\"}\n"
        "defaults:\n  labels: {team: bench}\n")
    lines = ["secrets:"]
    for i in range(size):
        lines += [f"  - name: bench/secret-{i:05d}", "    targets: [aws-bench]",
                  "    value: {generate: {length: 24}}"]
        if i % READERS_EVERY == 0:
            lines.append("    readers: [app]")
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "bench.yaml").write_text("\n".join(lines) + "\n")


def seed(root: Path) -> float:
    """Apply the stack with quota pacing lifted (moto has no quotas); return seconds."""
    saved = AwsProvider.quota_scale, AwsProvider.limits
    AwsProvider.quota_scale, AwsProvider.limits = 1e6, RateLimits(writes_per_second=1e6, max_parallel=16)
    try:
        started = time.perf_counter()
        stack = load_stack(root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets))
            report = apply_plan(session, run, parallelism=16)
        if not report.ok:
            raise SystemExit(f"seeding failed: {[r.error for r in report.results if r.error][:3]}")
        return time.perf_counter() - started
    finally:
        AwsProvider.quota_scale, AwsProvider.limits = saved


def plan_once(root: Path, *, paced: bool) -> PlanFigures:
    saved = AwsProvider.quota_scale
    if not paced:
        AwsProvider.quota_scale = 1e6
    try:
        stack = load_stack(root)
        calls: Counter[str] = Counter()

        def count(model: Any, **_kwargs: Any) -> None:
            calls[model.name] += 1

        with open_session(stack) as session:
            target = next(iter(stack.config.targets))
            provider = session.provider(target)
            provider.client.meta.events.register("before-call.secrets-manager", count)  # type: ignore[attr-defined]
            trail = getattr(provider, "trail", None)
            if trail is not None:
                trail.meta.events.register("before-call.cloudtrail", count)
            started = time.perf_counter()
            run = build_plan(session, [target])
            seconds = time.perf_counter() - started
        summary = run.plan.summary()
        return PlanFigures(seconds, calls, len(run.plan.real_changes), summary["unchanged"])
    finally:
        AwsProvider.quota_scale = saved


def quota_seconds(calls: Counter[str], headroom: float = DEFAULT_HEADROOM) -> float:
    """Seconds a plan of these calls takes at cloudsync's pace of the published quotas (families
    are paced in parallel, so the slowest family sets the time)."""
    by_family: Counter[Bucket] = Counter()
    for operation, count in calls.items():
        if operation in ACTIONS:
            by_family[ACTIONS[operation].bucket] += count
    return max((n / (QUOTAS[b] * headroom) for b, n in by_family.items()), default=0.0)


def goal(size: int) -> int:
    """The issue's goal for a plan of N unchanged secrets with k declaring readers: ceil(N/100) + k + 10."""
    return math.ceil(size / 100) + size // READERS_EVERY + 10


def rows(sizes: tuple[int, ...] = (1_000, 10_000), modes: tuple[str, ...] = ("default", "all", "declared"),
         ) -> list[dict[str, Any]]:
    """One row per (N, access_drift mode): calls by operation of a plan of N unchanged secrets
    (k = N/10 declaring readers), the goal, the Terraform per-secret refresh model, and the time
    at the published quotas. Plans run unpaced against moto; the time is derived from the calls."""
    os.environ.update(FAKE_ENV)
    for key in [k for k in os.environ if k.startswith("CLOUDSYNC_")]:
        del os.environ[key]
    url = start_moto()
    found = []
    for size in sizes:
        reset(url)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "stack"
            os.environ["CLOUDSYNC_AUDIT_LOG"] = str(Path(tmp) / "audit.jsonl")
            write_stack(root, url, size)  # seeded once with the default: its sync marks serve it
            seed(root)
            for mode in modes:
                write_stack(root, url, size, mode)
                figures = plan_once(root, paced=False)
                total = sum(figures.calls.values())
                refresh = REFRESH_CALLS_PER_SECRET * size
                found.append({
                    "cloud": "aws", "n": size, "k": size // READERS_EVERY, "mode": mode, "calls": total,
                    "by_operation": dict(sorted(figures.calls.items())), "goal": goal(size),
                    "meets_goal": total <= goal(size), "terraform_refresh_calls": refresh,
                    "seconds_at_quota": round(quota_seconds(figures.calls), 1),
                    "terraform_seconds_at_quota": round(size / (QUOTAS[Bucket.POLICY] * DEFAULT_HEADROOM), 1),
                    "unpaced_seconds": round(figures.seconds, 2), "changes": figures.changes})
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated stack sizes")
    parser.add_argument("--modes", default="default,all,declared",
                        help="access_drift modes to plan with (default: the target without the key)")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    modes = tuple(m for m in args.modes.split(",") if m)
    print(f"{'N':>6} {'k':>5} {'mode':<9} {'calls':>6} {'goal':>5} {'at quota':>9} {'terraform':>9} "
          f"{'tf at quota':>11}  calls by operation")
    for row in rows(sizes, modes):
        ops = ", ".join(f"{op} {n}" for op, n in row["by_operation"].items())
        verdict = "ok" if row["meets_goal"] else "over"
        print(f"{row['n']:>6} {row['k']:>5} {row['mode']:<9} {row['calls']:>6} {row['goal']:>5} "
              f"{row['seconds_at_quota']:>8}s {row['terraform_refresh_calls']:>9} "
              f"{row['terraform_seconds_at_quota']:>10}s  [{ops}] goal {verdict}")


if __name__ == "__main__":
    main()

"""What a plan of an unchanged AWS stack costs: wall time and API calls by operation.

Starts a moto server on 127.0.0.1, applies a stack of N secrets with cloudsync (quota
pacing lifted, to seed quickly), then plans the unchanged stack twice: paced to AWS's
published quotas (what a real account would see) and unpaced (cloudsync's own overhead
against a local server). API calls are counted with botocore's ``before-call`` event hook
and compared with a per-secret refresh (~3 calls per secret: DescribeSecret,
GetSecretValue, GetResourcePolicy, as Terraform's provider does).

    /work/venv/bin/python benchmarks/aws_plan.py [--sizes 1000,5000] [--pace both|real|none]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.base import RateLimits

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
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    # moto's backends are not thread-safe: serve one request at a time (as tests/fakes does).
    app, lock = server._server.app, threading.Lock()  # type: ignore[union-attr]

    def serialised(environ: Any, start_response: Any) -> Any:
        with lock:
            return list(app(environ, start_response))

    server._server.app = serialised  # type: ignore[union-attr]
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


def reset(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")) as response:
        response.read()


def write_stack(root: Path, url: str, size: int, access_drift: str = "all") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cloudsync.yaml").write_text(
        "version: 1\nstack: bench\n"
        f"targets:\n  aws-bench: {{provider: aws, region: us-east-1, endpoint: \"{url}\", "
        f"access_drift: {access_drift}}}\n"
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
            started = time.perf_counter()
            run = build_plan(session, [target])
            seconds = time.perf_counter() - started
        summary = run.plan.summary()
        return PlanFigures(seconds, calls, len(run.plan.real_changes), summary["unchanged"])
    finally:
        AwsProvider.quota_scale = saved


def report(size: int, seed_seconds: float, label: str, figures: PlanFigures) -> None:
    total = sum(figures.calls.values())
    by_op = ", ".join(f"{op} {n}" for op, n in sorted(figures.calls.items()))
    refresh = REFRESH_CALLS_PER_SECRET * size
    print(f"  plan ({label:<8}) {figures.seconds:8.2f} s   {total:6d} calls  [{by_op}]   "
          f"changes {figures.changes}, unchanged {figures.unchanged}")
    if label == "paced":
        print(f"  per-secret refresh would make ~{refresh} calls ({total / refresh:.2f}x of that); "
              f"seeding apply took {seed_seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated stack sizes")
    parser.add_argument("--pace", choices=("both", "real", "none"), default="both",
                        help="plan paced to AWS quotas, unpaced, or both")
    parser.add_argument("--access-drift", choices=("all", "declared"), default="all",
                        help="the target's access_drift: read every owned policy, or only where readers are declared")
    args = parser.parse_args()
    os.environ.update(FAKE_ENV)
    for key in [k for k in os.environ if k.startswith("CLOUDSYNC_")]:
        del os.environ[key]
    url = start_moto()
    print(f"moto server at {url}")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        reset(url)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "stack"
            os.environ["CLOUDSYNC_AUDIT_LOG"] = str(Path(tmp) / "audit.jsonl")
            write_stack(root, url, size, args.access_drift)
            seconds = seed(root)
            print(f"{size} secrets ({size // READERS_EVERY} with readers):")
            if args.pace in ("both", "none"):
                report(size, seconds, "unpaced", plan_once(root, paced=False))
            if args.pace in ("both", "real"):
                report(size, seconds, "paced", plan_once(root, paced=True))


if __name__ == "__main__":
    main()

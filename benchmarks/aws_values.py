"""What a plan of N values copied from an AWS target costs: API calls, one at a time vs in batches.

Starts a moto server on 127.0.0.1, creates N secrets in it (out of band: the stack does not
own them), and plans a stack whose N secrets, in a local target, are each copied from one
of them (``value: {from: {target: aws-src, name: …}}``), as ``plan --target local``: the AWS
target is read for those values only (no ListSecrets). The plan runs twice, unpaced: with
the provider contract's default loop (one ``GetSecretValue`` per value: how every value was
read before) and with the AWS adapter's ``BatchGetSecretValue`` (20 a call). Secrets Manager
calls are counted by the adapter (``Provider.api_calls``).

    .venv/bin/python benchmarks/aws_values.py [--sizes 1000,10000]

Per N and way of reading it prints the calls by operation, the wall and CPU seconds of the
plan against moto (loopback: no network latency), and the time those calls take at 95 % of
the published quotas (GetSecretValue 10,000/s; BatchGetSecretValue 100/s, its own family).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from aws_plan import FAKE_ENV, quota_seconds, reset, start_moto

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.base import Provider

SOURCE = "aws-src"
WAYS = {"one at a time (before)": Provider.read_values, "BatchGetSecretValue (after)": AwsProvider.read_values}


def write_stack(root: Path, url: str, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "stack: bench", "targets:",
             f"  {SOURCE}: {{provider: aws, region: us-east-1, endpoint: \"{url}\"}}",
             "  local: {provider: local, path: .cloudsync/local.db}",
             "policy: {builtin: false}", "secrets:"]
    for i in range(size):
        lines += [f"  - name: copied/c-{i:05d}", "    targets: [local]",
                  f"    value: {{from: {{target: {SOURCE}, name: vendor/s-{i:05d}}}}}"]
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")


def seed(url: str, size: int) -> None:
    client: Any = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url)
    for i in range(size):
        client.create_secret(Name=f"vendor/s-{i:05d}", SecretString=f"bench-value-{i:05d}")
    client.close()


def plan_once(root: Path) -> tuple[Counter[str], float, float, int]:
    """Calls by operation (as the adapter counts them), wall and CPU seconds, and the changes of one unpaced plan."""
    saved = AwsProvider.quota_scale
    AwsProvider.quota_scale = 1e6
    try:
        stack = load_stack(root)
        with open_session(stack) as session:
            wall, cpu = time.perf_counter(), time.process_time()
            run = build_plan(session, ["local"])  # the copies' target: AWS is only read for their values
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            calls = Counter(session.provider(SOURCE).api_calls)
        return calls, wall, cpu, len(run.plan.real_changes)
    finally:
        AwsProvider.quota_scale = saved


def rows(sizes: tuple[int, ...] = (1_000, 10_000)) -> list[dict[str, Any]]:
    os.environ.update(FAKE_ENV)
    for key in [k for k in os.environ if k.startswith("CLOUDSYNC_")]:
        del os.environ[key]
    url = start_moto()
    found = []
    saved = AwsProvider.read_values
    try:
        for size in sizes:
            reset(url)
            seed(url, size)
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "stack"
                os.environ["CLOUDSYNC_AUDIT_LOG"] = str(Path(tmp) / "audit.jsonl")
                write_stack(root, url, size)
                for way, read_values in WAYS.items():
                    AwsProvider.read_values = read_values  # type: ignore[method-assign]
                    calls, wall, cpu, changes = plan_once(root)
                    values = {op: n for op, n in calls.items() if op in ("GetSecretValue", "BatchGetSecretValue")}
                    found.append({
                        "cloud": "aws", "n": size, "read": way, "value_calls": sum(values.values()),
                        "calls": sum(calls.values()), "by_operation": dict(sorted(calls.items())),
                        "seconds_at_quota": round(quota_seconds(Counter(values)), 2),
                        "unpaced_wall_seconds": round(wall, 2), "unpaced_cpu_seconds": round(cpu, 2),
                        "changes": changes})
    finally:
        AwsProvider.read_values = saved  # type: ignore[method-assign]
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of copied values")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",") if s)
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'N':>6} {'read':<28} {'value calls':>11} {'calls':>6} {'at quota':>9} {'wall':>7} {'cpu':>7}  by operation")
    for row in rows(sizes):
        ops = ", ".join(f"{op} {n}" for op, n in row["by_operation"].items())
        print(f"{row['n']:>6} {row['read']:<28} {row['value_calls']:>11} {row['calls']:>6} "
              f"{row['seconds_at_quota']:>8}s {row['unpaced_wall_seconds']:>6}s {row['unpaced_cpu_seconds']:>6}s  [{ops}]")


if __name__ == "__main__":
    main()

"""Start two ``cloudsync apply`` processes of one stack at the same instant, many times.

    python benchmarks/concurrent_apply.py [--trials 100] [--provider local|aws] [--secrets 6]

Each trial uses a fresh stack (and, for aws, a reset moto server on 127.0.0.1) and counts
how many of the two processes wrote, from the audit log and from the versions the target
holds. The contract: exactly one writes in every trial; the other fails on the lock or
finds nothing left to do. Prints the tally and the time each trial took.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.concurrency import audit_events, lost_race, start, writers


def write_stack(root: Path, provider: str, endpoint: str | None, secrets: int) -> None:
    target = ("{provider: local}" if provider == "local"
              else f'{{provider: aws, region: us-east-1, endpoint: "{endpoint}"}}')
    lines = ["version: 1", "stack: bench", "targets:", f"  main: {target}", "policy: {builtin: false}", "secrets:"]
    for i in range(secrets):
        value = "{env: BENCH_VALUE}" if i == 0 else "{generate: {length: 32}}"
        lines += [f"  - name: bench/secret-{i}", "    targets: [main]", f"    value: {value}"]
    root.mkdir(parents=True)
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")


def versions_written(provider: str, root: Path, moto: Any) -> int:
    if provider == "local":
        import sqlite3

        with sqlite3.connect(root / ".cloudsync" / "local.db") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM versions WHERE name LIKE 'bench/%'").fetchone()[0])
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.url)
    names = [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith("bench/")]
    return sum(len(sm.list_secret_version_ids(SecretId=n)["Versions"]) for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--provider", choices=["local", "aws"], default="local")
    parser.add_argument("--secrets", type=int, default=6)
    args = parser.parse_args()

    env = {"BENCH_VALUE": "not-a-secret-benchmark-value"}
    moto = None
    if args.provider == "aws":
        from tests.fakes.moto_server import ENV, start_moto

        moto = start_moto()
        env.update(ENV)
        os.environ.update(ENV)  # for this process's own boto3 client that counts versions
    tally = {"one wrote": 0, "both wrote": 0, "none wrote": 0}
    bad: list[str] = []
    took: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for trial in range(args.trials):
            if moto is not None:
                moto.reset()
            root = Path(tmp) / f"trial-{trial}"
            write_stack(root, args.provider, moto.url if moto else None, args.secrets)
            command = ["apply", "--auto-approve", "-C", str(root)]
            began = time.perf_counter()
            procs = [start(command, env, cwd=root), start(command, env, cwd=root)]
            results = [p.finish() for p in procs]
            took.append(time.perf_counter() - began)
            wrote = len(writers(audit_events(root / ".cloudsync" / "audit.jsonl")))
            tally[{1: "one wrote", 2: "both wrote"}.get(wrote, "none wrote")] += 1
            if versions_written(args.provider, root, moto) != args.secrets:
                bad.append(f"trial {trial}: {versions_written(args.provider, root, moto)} versions")
            if wrote == 1 and not any(lost_race(*r) for r in results):
                bad.append(f"trial {trial}: the other apply neither lost the race cleanly nor found nothing to do")
            print(f"\rtrial {trial + 1}/{args.trials}: {tally}", end="", file=sys.stderr, flush=True)
    if moto is not None:
        moto.server.stop()
    print(file=sys.stderr)
    print(f"provider={args.provider} trials={args.trials} secrets={args.secrets} cpus={os.cpu_count()}")
    print(f"  {tally}")
    print(f"  per trial: median {statistics.median(took):.2f}s, max {max(took):.2f}s")
    for line in bad:
        print(f"  FAILED {line}")
    sys.exit(1 if bad or tally["both wrote"] else 0)


if __name__ == "__main__":
    main()

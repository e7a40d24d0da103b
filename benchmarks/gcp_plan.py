"""What a plan of an unchanged GCP stack costs: wall time and API calls by method.

Starts the tests' fake Secret Manager (real gRPC on 127.0.0.1), applies a stack of N
secrets with cloudsync (quota pacing lifted, to seed quickly), then plans the unchanged
stack, with values and ``--metadata-only``. Calls are counted by the fake, per RPC method,
and compared with a per-secret refresh (~2 calls per secret: GetSecret and GetIamPolicy,
as Terraform's google provider refreshes a secret and its IAM binding). Against a real
project a plan is bound by the 600 reads/min quota, so the time it would take there is
projected from the read calls.

    /work/venv/bin/python benchmarks/gcp_plan.py [--sizes 1000,5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fake lives in the repository

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.base import RateLimits
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.calls import QuotaLimits
from cloudsync.providers.gcp.catalog import METHODS, Quota
from tests.fakes.gcp import FakeSecretManager

READERS_EVERY = 10  # one secret in ten declares a reader
REFRESH_CALLS_PER_SECRET = 2
READS_PER_MINUTE = QuotaLimits().reads_per_minute * QuotaLimits().headroom


@dataclass
class Figures:
    seconds: float
    calls: Counter[str]
    changes: int

    @property
    def reads(self) -> int:
        return sum(n for m, n in self.calls.items() if m in METHODS and METHODS[m].quota is Quota.READ)


def write_stack(root: Path, address: str, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cloudsync.yaml").write_text(
        "version: 1\nstack: bench\n"
        f"targets:\n  gcp-bench: {{provider: gcp, project: bench-project, endpoint: \"{address}\"}}\n"
        "principals:\n  app: {gcp: \"serviceAccount:app@bench-project.iam.gserviceaccount.com\"}\n"
        "defaults:\n  labels: {team: bench}\n")
    lines = ["secrets:"]
    for i in range(size):
        lines += [f"  - name: bench/secret-{i:05d}", "    targets: [gcp-bench]", "    value: {generate: {length: 24}}"]
        if i % READERS_EVERY == 0:
            lines.append("    readers: [app]")
    (root / "secrets").mkdir(exist_ok=True)
    (root / "secrets" / "bench.yaml").write_text("\n".join(lines) + "\n")


def run(root: Path, fake: FakeSecretManager, *, apply: bool, metadata_only: bool = False) -> Figures:
    stack = load_stack(root)
    fake.calls.clear()
    started = time.perf_counter()
    with open_session(stack) as session:
        planned = build_plan(session, ["gcp-bench"], metadata_only=metadata_only)
        if apply:
            report = apply_plan(session, planned, parallelism=16)
            assert report.ok, [r.error for r in report.results if r.error][:3]
    return Figures(time.perf_counter() - started, Counter(fake.calls), len(planned.plan.real_changes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000", help="comma-separated stack sizes")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    # The fake has no quotas: lift the pacing so seeding and planning measure cloudsync itself.
    GcpProvider.quota = QuotaLimits(reads_per_minute=6e6, writes_per_minute=6e6, access_per_minute=6e6,
                                    writes_per_secret_per_second=1e5)
    GcpProvider.limits = RateLimits(writes_per_second=1e5, max_parallel=8)
    fake = FakeSecretManager().start()
    try:
        rows = []
        for size in sizes:
            fake.reset()
            with tempfile.TemporaryDirectory(prefix="cloudsync-gcp-bench-") as tmp:
                root = Path(tmp) / "stack"
                write_stack(root, fake.address, size)
                seeded = run(root, fake, apply=True)
                full = run(root, fake, apply=False)
                meta = run(root, fake, apply=False, metadata_only=True)
            assert full.changes == 0 and meta.changes == 0, "an unchanged stack must plan no changes"
            rows.append((size, seeded, full, meta))
            report(size, seeded, full, meta)
        summary(rows)
    finally:
        fake.stop()


def report(size: int, seeded: Figures, full: Figures, meta: Figures) -> None:
    print(f"\n== {size} secrets ==")
    print(f"apply (seed):        {seeded.seconds:7.2f} s  {sum(seeded.calls.values()):6d} calls  "
          + ", ".join(f"{m} {n}" for m, n in seeded.calls.most_common()))
    for label, figures in (("plan", full), ("plan --metadata-only", meta)):
        total = sum(figures.calls.values())
        print(f"{label + ':':<21}{figures.seconds:7.2f} s  {total:6d} calls  "
              + ", ".join(f"{m} {n}" for m, n in figures.calls.most_common()))
        print(f"{'':21}{total / size:.2f} calls/secret; per-secret refresh: {REFRESH_CALLS_PER_SECRET * size} calls "
              f"({REFRESH_CALLS_PER_SECRET:.2f}/secret); at the real read quota ({READS_PER_MINUTE:.0f}/min paced) "
              f">= {figures.reads / READS_PER_MINUTE:.1f} min")


def summary(rows: list[tuple[int, Figures, Figures, Figures]]) -> None:
    print("\n| secrets | apply s | plan s | plan calls | calls/secret | ListSecrets | GetIamPolicy | GetSecretVersion |"
          " AccessSecretVersion | per-secret refresh | minutes at 600 reads/min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for size, seeded, full, _ in rows:
        c = full.calls
        print(f"| {size} | {seeded.seconds:.1f} | {full.seconds:.2f} | {sum(c.values())} | "
              f"{sum(c.values()) / size:.2f} | {c['ListSecrets']} | {c['GetIamPolicy']} | {c['GetSecretVersion']} | "
              f"{c['AccessSecretVersion']} | {REFRESH_CALLS_PER_SECRET * size} | {full.reads / READS_PER_MINUTE:.1f} |")


if __name__ == "__main__":
    main()

"""What a plan of an unchanged GCP stack costs: API calls by operation, and the time they take
at the published quotas.

Starts the tests' fake Secret Manager (real gRPC on 127.0.0.1, with its Cloud Asset
Inventory), applies a stack of N secrets (one in ten declaring a reader: k = N/10) with
cloudsync, moves the fake's clock past the asset index's lag window (the secrets are old
now, as in a steady state), then plans the unchanged stack twice: with the asset index
(``inventory: true``, the default) and without it (``inventory: false``: two direct reads
per owned secret, what every plan cost before). Calls are counted by the fake, per RPC.

Each row compares the calls with:
- the goal of issue 14: ceil(N/25,000) + k + 10;
- Terraform's per-secret refresh (google provider): GetSecret + GetIamPolicy +
  AccessSecretVersion for each secret (3N calls);
- the time at the published per-project quotas, each operation family at its own rate and
  the families one after another (as a plan runs its phases): Secret Manager reads
  600/min and AccessSecretVersion 90,000/min (https://cloud.google.com/secret-manager/quotas),
  Cloud Asset Inventory SearchAllIamPolicies 400/min and ListAssets 100/min
  (https://cloud.google.com/asset-inventory/docs/quota), Resource Manager and IAM reads
  600/min (cloudsync's own pacing of them).

It also reports the writes per create of the seeding apply.

    .venv/bin/python benchmarks/gcp_plan.py [--sizes 1000,10000]

``rows(sizes)`` returns the same figures as dicts (for benchmarks/run_all.py).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
LAG_WINDOW_SECONDS = 31 * 60  # past cloudsync's default inventory_lag_minutes (30)
WRITES = ("CreateSecret", "AddSecretVersion", "UpdateSecret", "SetIamPolicy")
# Published per-project quotas, requests per minute (see the module docstring for sources).
PUBLISHED = {Quota.READ: 600.0, Quota.WRITE: 600.0, Quota.ACCESS: 90_000.0, Quota.IAM_READ: 600.0,
             Quota.ASSET_SEARCH: 400.0, Quota.ASSET_LIST: 100.0}
QUOTA_SOURCES = ("https://cloud.google.com/secret-manager/quotas; "
                 "https://cloud.google.com/asset-inventory/docs/quota")


@dataclass
class Figures:
    seconds: float
    calls: Counter[str]
    changes: int

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def minutes_at_quota(self) -> float:
        return minutes_at_quota(self.calls)


def minutes_at_quota(calls: Counter[str]) -> float:
    """Each quota family at its published rate, one family after another."""
    per_family: Counter[Quota] = Counter()
    for method, count in calls.items():
        spec = METHODS.get(method)
        per_family[spec.quota if spec else Quota.READ] += count
    return sum(count / PUBLISHED[family] for family, count in per_family.items())


def goal(size: int, readers: int) -> int:
    return math.ceil(size / 25_000) + readers + 10


def terraform_calls(size: int) -> Counter[str]:
    """Terraform's google provider refreshes each secret, its IAM policy and its version's data."""
    return Counter({"GetSecret": size, "GetIamPolicy": size, "AccessSecretVersion": size})


def write_stack(root: Path, address: str, size: int, *, inventory: bool = True) -> None:
    root.mkdir(parents=True, exist_ok=True)
    extra = "" if inventory else ", inventory: false"
    (root / "cloudsync.yaml").write_text(
        "version: 1\nstack: bench\n"
        f"targets:\n  gcp-bench: {{provider: gcp, project: bench-project, endpoint: \"{address}\"{extra}}}\n"
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


def _lift_pacing() -> None:
    """The fake has no quotas: lift the pacing so seeding and planning measure cloudsync itself."""
    GcpProvider.quota = QuotaLimits(reads_per_minute=6e6, writes_per_minute=6e6, access_per_minute=6e6,
                                    writes_per_secret_per_second=1e5, iam_reads_per_minute=6e6,
                                    asset_searches_per_minute=6e6, asset_lists_per_minute=6e6)
    GcpProvider.limits = RateLimits(writes_per_second=1e5, max_parallel=8)


def measure(size: int, fake: FakeSecretManager) -> list[dict[str, Any]]:
    """Seed ``size`` secrets, then plan them with and without the index: one row per plan."""
    fake.reset()
    readers = math.ceil(size / READERS_EVERY)
    with tempfile.TemporaryDirectory(prefix="cloudsync-gcp-bench-") as tmp:
        root = Path(tmp) / "stack"
        write_stack(root, fake.address, size)
        seeded = run(root, fake, apply=True)
        fake.advance(LAG_WINDOW_SECONDS)  # a steady state: the secrets are older than the lag window
        plans = {"inventory": run(root, fake, apply=False)}
        write_stack(root, fake.address, size, inventory=False)
        plans["direct"] = run(root, fake, apply=False)
    writes = sum(seeded.calls[m] for m in WRITES)
    creates = seeded.calls["AddSecretVersion"]  # one per secret with a value (and the fingerprint key)
    terraform = terraform_calls(size)
    out = []
    for mode, figures in plans.items():
        assert figures.changes == 0, "an unchanged stack must plan no changes"
        out.append({
            "cloud": "gcp", "benchmark": "plan", "mode": mode, "secrets": size, "readers": readers,
            "calls": figures.total, "calls_by_operation": dict(sorted(figures.calls.items())),
            "goal": goal(size, readers), "goal_formula": "ceil(N/25000) + k + 10",
            "meets_goal": figures.total <= goal(size, readers),
            "minutes_at_quota": round(figures.minutes_at_quota(), 2),
            "terraform_calls": sum(terraform.values()),
            "terraform_minutes_at_quota": round(minutes_at_quota(terraform), 2),
            "seconds_against_fake": round(figures.seconds, 2),
            "writes_per_create": round(writes / creates, 2) if creates else None,
            "apply_writes_by_operation": {m: seeded.calls[m] for m in WRITES},
            "quota_sources": QUOTA_SOURCES,
        })
    return out


def rows(sizes: Sequence[int] = (1000, 10_000)) -> list[dict[str, Any]]:
    """The figures of every size, as dicts (one per plan mode); starts and stops its own fake."""
    _lift_pacing()
    fake = FakeSecretManager().start()
    try:
        return [row for size in sizes for row in measure(size, fake)]
    finally:
        fake.stop()


def render(found: list[dict[str, Any]]) -> str:
    lines = ["| N | k | plan | calls | goal (ceil(N/25k)+k+10) | min at quota | s vs fake | Terraform calls |"
             " Terraform min | writes/create | calls by operation |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in found:
        ops = ", ".join(f"{m} {n}" for m, n in r["calls_by_operation"].items())
        lines.append(f"| {r['secrets']:,} | {r['readers']:,} | {r['mode']} | {r['calls']:,} | {r['goal']:,}"
                     f"{' ✓' if r['meets_goal'] else ' ✗'} | {r['minutes_at_quota']:.1f} | {r['seconds_against_fake']:.2f} | "
                     f"{r['terraform_calls']:,} | "
                     f"{r['terraform_minutes_at_quota']:.1f} | {r['writes_per_create']} | {ops} |")
    lines.append(f"\nQuotas: {QUOTA_SOURCES} (families one after another; cloudsync paces at 90% of them).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated stack sizes")
    args = parser.parse_args(argv)
    print(render(rows([int(s) for s in args.sizes.split(",") if s.strip()])))


if __name__ == "__main__":
    main()

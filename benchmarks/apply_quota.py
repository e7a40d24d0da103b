"""The share of each cloud's write quota an apply reaches, against a server that enforces it.

Per cloud, N secrets are created through the engine (plan, then apply, timed around the
apply) while the test server enforces the cloud's published quotas as token buckets (a full
bucket holds one second's worth): AWS through the fault proxy in front of moto (a refused
request gets AWS's ``ThrottlingException``), Azure in the HTTPS fake (Key Vault's 429 with
``Retry-After``), GCP in the gRPC fake (``RESOURCE_EXHAUSTED`` with ``RetryInfo``; the project's
quotas scaled 10x on both sides, see :func:`measure_gcp`). cloudsync runs with its defaults:
no quota is lifted beyond what the server enforces, nothing is told about the server.
Reported per cloud: the family that binds (the write family closest to its quota), requests
served in it per second against its quota, the share, the requests the server refused (each
one retried by the clients) and the changes that failed.

    .venv/bin/python benchmarks/apply_quota.py [--clouds aws,azure,gcp,local] [--aws 1000] [--azure 600]
        [--gcp 1000] [--gcp-scale 10]

The share is requests served in the family per second of apply, over the quota. The
server's buckets start full (one second's worth), so a run shorter than ~20 s flatters it:
the defaults run ~20 s per cloud.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fakes live in the repository
sys.path.insert(0, str(Path(__file__).resolve().parent))

AWS_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
AWS_WRITE_FAMILIES = ("create", "write", "policy", "tag", "delete", "restore")
AZURE_WRITE_FAMILIES = ("create", "transactions")
GOAL = 0.9


def _secrets(size: int, target: str, readers_every: int = 0, principal: str = "app") -> str:
    lines = ["secrets:"]
    for i in range(size):
        lines += [f"  - name: bench/secret-{i:05d}", f"    targets: [{target}]", "    value: {generate: {length: 24}}"]
        if readers_every and i % readers_every == 0:
            lines.append(f"    readers: [{principal}]")
    return "\n".join(lines) + "\n"


def _apply(root: Path) -> tuple[float, int, int]:
    """Plan and apply the stack at ``root``; (seconds of the apply, changes applied, changes failed)."""
    from cloudsync.apply import apply_plan
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import build_plan, open_session

    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets))
        started = time.perf_counter()
        report = apply_plan(session, run)
        seconds = time.perf_counter() - started
    applied = sum(1 for r in report.results if r.outcome.value == "applied")
    return seconds, applied, len(report.results) - applied


def _row(cloud: str, changes: int, seconds: float, failed: int, served: dict[str, int], throttled: dict[str, int],
         rates: dict[str, float], families: tuple[str, ...]) -> dict[str, Any]:
    shares = {f: served.get(f, 0) / (rates[f] * seconds) for f in families if f in rates}
    binding = max(shares, key=lambda f: shares[f])
    return {"cloud": cloud, "changes": changes, "seconds": round(seconds, 2), "family": binding,
            "quota_per_s": rates[binding], "reached_per_s": round(served.get(binding, 0) / seconds, 1),
            "share": round(shares[binding], 3), "throttled": sum(throttled.values()), "failed": failed,
            "requests": dict(sorted(served.items()))}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def measure_aws(size: int = 1_000, readers_every: int = 10) -> dict[str, Any]:
    """Creates against moto behind a proxy that enforces Secrets Manager's per-family quotas."""
    from tests.fakes.moto_server import FaultProxy, start_moto

    moto = start_moto()
    proxy = FaultProxy(moto.url)
    try:
        with tempfile.TemporaryDirectory() as tmp, _environment({**AWS_ENV,
                                                                 "CLOUDSYNC_AUDIT_LOG": f"{tmp}/audit.jsonl"}):
            root = Path(tmp) / "stack"
            root.mkdir()
            (root / "cloudsync.yaml").write_text(
                "version: 1\nstack: bench\n"
                f"targets:\n  aws-bench: {{provider: aws, region: us-east-1, endpoint: \"{proxy.url}\", "
                "access_scan: false}\n"
                "principals:\n  app: {aws: \"arn:aws:iam::123456789012:role/app\"}\n"
                + _secrets(size, "aws-bench", readers_every))
            quota = proxy.enforce_quota()
            seconds, applied, failed = _apply(root)
            return _row("aws", applied, seconds, failed, dict(quota.served), dict(quota.throttled), quota.rates,
                        AWS_WRITE_FAMILIES)
    finally:
        proxy.close()
        moto.server.stop()


def _quota_on(fake: Any) -> None:
    fake.enforce_quota()


def _quota_stats(fake: Any) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    quota = fake.quota
    return dict(quota.served), dict(quota.throttled), dict(quota.rates)


def measure_azure(size: int = 600) -> dict[str, Any]:
    """Creates against the Key Vault fake enforcing 4,000 transactions and 300 creates per 10 s."""
    import azure_plan

    azure_plan.COMMANDS.update({"quota_on": _quota_on, "quota_stats": _quota_stats})
    folder = Path(tempfile.mkdtemp(prefix="cloudsync-quota-bench-"))
    fake = azure_plan.FakeProcess(folder / "tls")
    try:
        with _environment({**fake.info["env"], "CLOUDSYNC_AUDIT_LOG": str(folder / "audit.jsonl")}):
            root = folder / "stack"
            root.mkdir()
            info = fake.info
            (root / "cloudsync.yaml").write_text(
                "version: 1\nstack: bench\ntargets:\n"
                f"  azure-bench: {{provider: azure, vault_url: '{info['url']}'}}\n" + _secrets(size, "azure-bench"))
            fake.ask(("quota_on",))
            seconds, applied, failed = _apply(root)
            served, throttled, rates = fake.ask(("quota_stats",))
            return _row("azure", applied, seconds, failed, served, throttled, rates, AZURE_WRITE_FAMILIES)
    finally:
        fake.stop()


def measure_gcp(size: int = 1_000, readers_every: int = 10, scale: float = 10.0) -> dict[str, Any]:
    """Creates against the gRPC fake enforcing Secret Manager's quotas, the project's scaled by ``scale``.

    At the published 600 writes/min a create (two writes, three with a reader) paces a
    1,000-secret apply to ~4 minutes; the project's read and write quotas are raised ``scale``
    times on both sides, the fake's buckets and the target's ``reads_per_minute`` /
    ``writes_per_minute`` (what a project with raised quotas declares), so the share is the same
    measurement in a tenth of the time. The per-secret limits (2 writes/s per secret) stay as published.
    """
    from tests.fakes.gcp import FakeSecretManager

    fake = FakeSecretManager().start()
    per_minute = int(600 * scale)
    try:
        with tempfile.TemporaryDirectory() as tmp, _environment({"CLOUDSYNC_AUDIT_LOG": f"{tmp}/audit.jsonl"}):
            root = Path(tmp) / "stack"
            root.mkdir()
            (root / "cloudsync.yaml").write_text(
                "version: 1\nstack: bench\n"
                f"targets:\n  gcp-bench: {{provider: gcp, project: bench-project, endpoint: '{fake.address}', "
                f"access_scan: false, inventory: false, reads_per_minute: {per_minute}, "
                f"writes_per_minute: {per_minute}}}\n"
                "principals:\n  app: {gcp: 'serviceAccount:app@bench-project.iam.gserviceaccount.com'}\n"
                + _secrets(size, "gcp-bench", readers_every))
            quota = fake.enforce_quota(reads_per_minute=per_minute, writes_per_minute=per_minute)
            seconds, applied, failed = _apply(root)
            row = _row("gcp", applied, seconds, failed, dict(quota.project.served), dict(quota.project.throttled),
                       quota.project.rates, ("write",))
            writes = sum(fake.calls[m] for m in ("CreateSecret", "AddSecretVersion", "UpdateSecret", "SetIamPolicy"))
            row["writes_per_create"] = round(writes / max(1, applied), 2)
            row["quota_scale"] = scale
            return row
    finally:
        fake.stop()


def measure_local(size: int = 2_000) -> dict[str, Any]:
    """The local store has no quota: what the engine itself sustains."""
    with tempfile.TemporaryDirectory() as tmp, _environment({"CLOUDSYNC_AUDIT_LOG": f"{tmp}/audit.jsonl"}):
        root = Path(tmp) / "stack"
        root.mkdir()
        (root / "cloudsync.yaml").write_text("version: 1\nstack: bench\ntargets:\n  local: {provider: local}\n"
                                             + _secrets(size, "local"))
        seconds, applied, failed = _apply(root)
    return {"cloud": "local", "changes": applied, "seconds": round(seconds, 2), "family": "(no quota)",
            "quota_per_s": None, "reached_per_s": round(applied / seconds, 1), "share": None, "throttled": 0,
            "failed": failed, "requests": {}}


def rows(clouds: tuple[str, ...] = ("aws", "azure", "gcp", "local"), *, aws_size: int = 1_000,
         azure_size: int = 600, gcp_size: int = 1_000, gcp_scale: float = 10.0,
         local_size: int = 2_000) -> list[dict[str, Any]]:
    """One row per cloud: the binding write family, its quota, the rate and share reached, throttles, failures."""
    measure = {"aws": lambda: measure_aws(aws_size), "azure": lambda: measure_azure(azure_size),
               "gcp": lambda: measure_gcp(gcp_size, scale=gcp_scale), "local": lambda: measure_local(local_size)}
    return [measure[cloud]() for cloud in clouds]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", default="aws,azure,gcp,local")
    parser.add_argument("--aws", type=int, default=1_000, help="secrets created on AWS (default 1,000)")
    parser.add_argument("--azure", type=int, default=600, help="secrets created on Azure (default 600)")
    parser.add_argument("--gcp", type=int, default=1_000, help="secrets created on GCP (default 1,000)")
    parser.add_argument("--gcp-scale", type=float, default=10.0,
                        help="GCP project quotas raised this many times on both sides (1: the published 600/min)")
    parser.add_argument("--local", type=int, default=2_000, help="secrets created in the local store")
    args = parser.parse_args(argv)
    for key in [k for k in os.environ if k.startswith("CLOUDSYNC_")]:
        del os.environ[key]
    clouds = tuple(c for c in args.clouds.split(",") if c)
    print(f"{'cloud':<6} {'changes':>7} {'seconds':>8} {'binding family':<15} {'quota/s':>8} {'reached/s':>9} "
          f"{'share':>6} {'throttled':>9} {'failed':>6}")
    for row in rows(clouds, aws_size=args.aws, azure_size=args.azure, gcp_size=args.gcp, gcp_scale=args.gcp_scale,
                    local_size=args.local):
        share = f"{row['share']:.1%}" if row["share"] is not None else "n/a"
        quota = f"{row['quota_per_s']:g}" if row["quota_per_s"] is not None else "-"
        verdict = "" if row["share"] is None else ("  meets >= 90 %" if row["share"] >= GOAL and not row["failed"]
                                                   else "  BELOW the goal")
        print(f"{row['cloud']:<6} {row['changes']:>7} {row['seconds']:>8.2f} {row['family']:<15} {quota:>8} "
              f"{row['reached_per_s']:>9} {share:>6} {row['throttled']:>9} {row['failed']:>6}{verdict}")
        if row["requests"]:
            print(f"       requests served by family: {row['requests']}")
        if "writes_per_create" in row:
            print(f"       writes per create: {row['writes_per_create']}; the project's quotas scaled "
                  f"{row['quota_scale']:g}x on both sides (fake and target), per-secret limits as published")


if __name__ == "__main__":
    main()

"""Plan cost of an unchanged Azure stack at scale, against the HTTPS fake.

Half the secrets are generated, half come from an environment variable (so ``plan``
fingerprints them under the vault's fingerprint key, as stacks with sops or env values do).
Starts the fake (in its own process, so client and server do not share one GIL), applies N
secrets through the engine, then plans the unchanged stack and prints wall time and HTTP
calls by operation, next to a per-secret refresh (what a Terraform-style refresh costs:
one GET of each secret, value included, plus its role assignments).

    .venv/bin/python benchmarks/azure_plan.py [--sizes 1000,10000] [--readers-every 10] [--detail]

It prints, per N, the calls, the issue's goal (ceil(N/25) + 10), the time at cloudsync's pace
of the vault's quota (95 % of 4,000 transactions per 10 s), and the Terraform model (two calls
per secret); ``--detail`` also times a metadata-only plan and a real per-secret refresh.
The fake enforces no quota here, so the apply that seeds the vault runs unpaced.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRINCIPAL = "00000000-0000-4000-8000-0000000000a1"
# Commands other benchmarks add before starting the fake: (fake, *args) -> answer. The fake's
# process is forked, so it has them.
COMMANDS: dict[str, Callable[..., Any]] = {}


def _serve(conn: Connection, folder: str) -> None:
    """The fake's process: answers (command, ...) tuples from the benchmark."""
    from tests.fakes.azure import AzureFake, make_tls

    fake = AzureFake(make_tls(Path(folder))).start()
    conn.send({"env": fake.client_env(), "url": fake.url, "subscription_id": fake.subscription_id,
               "resource_group": fake.resource_group, "vault_name": fake.vault_name,
               "vault_scope": fake.vault_scope})
    while True:
        command = conn.recv()
        if command == "calls":
            conn.send(dict(fake.calls))
        elif command == "clear":
            fake.calls.clear()
            conn.send(None)
        elif command == "stop":
            fake.stop()
            conn.send(None)
            return
        elif isinstance(command, tuple) and command[0] in COMMANDS:
            conn.send(COMMANDS[command[0]](fake, *command[1:]))


class FakeProcess:
    def __init__(self, folder: Path) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(target=_serve, args=(child, str(folder)),
                                                                    daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.conn.recv()

    def ask(self, command: str | tuple[Any, ...]) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(5)


def write_stack(root: Path, info: dict[str, Any], size: int, readers_every: int) -> None:
    lines = ["version: 1", "stack: bench", "targets:",
             f"  azure-prod: {{provider: azure, vault_url: '{info['url']}', subscription_id: "
             f"'{info['subscription_id']}', resource_group: '{info['resource_group']}', "
             f"vault_name: '{info['vault_name']}', arm_endpoint: '{info['url']}'}}",
             f"principals:\n  api: {{azure: {PRINCIPAL}}}", "secrets:"]
    for i in range(size):
        readers = "\n    readers: [api]" if readers_every and i % readers_every == 0 else ""
        value = "{env: BENCH_VALUE}" if i % 2 else "{generate: {length: 24}}"
        lines.append(f"  - name: app/secret-{i:05d}\n    targets: [azure-prod]\n    labels: {{tier: bench}}\n"
                     f"    value: {value}{readers}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")


def seed(root: Path) -> tuple[float, int]:
    from cloudsync.apply import apply_plan
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import build_plan, open_session
    from cloudsync.providers.azure import AzureProvider
    from cloudsync.providers.base import RateLimits

    saved = AzureProvider.limits, AzureProvider.quota_scale
    # The fake enforces no quota here: seed unpaced (restored after, for other benchmarks in this process).
    AzureProvider.limits, AzureProvider.quota_scale = RateLimits(max_parallel=32), 1e6
    stack = load_stack(root)
    started = time.perf_counter()
    try:
        with open_session(stack) as session:
            run = build_plan(session, ["azure-prod"])
            report = apply_plan(session, run, parallelism=32)
    finally:
        AzureProvider.limits, AzureProvider.quota_scale = saved
    if not report.ok:
        raise SystemExit(f"seeding failed: {[r.error for r in report.results if r.error][:3]}")
    return time.perf_counter() - started, len(report.results)


def plan_once(root: Path, *, metadata_only: bool) -> tuple[float, Counter[str], int]:
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import build_plan, open_session

    stack = load_stack(root)
    with open_session(stack) as session:
        started = time.perf_counter()
        run = build_plan(session, ["azure-prod"], metadata_only=metadata_only)
        elapsed = time.perf_counter() - started
        calls = Counter(session.provider("azure-prod").api_calls)
    if run.plan.real_changes:
        raise SystemExit(f"the stack is not unchanged: {len(run.plan.real_changes)} changes")
    return elapsed, calls, len(run.actual["azure-prod"])


def per_secret_refresh(info: dict[str, Any], names: list[str]) -> tuple[float, Counter[str]]:
    """What a refresh costs when every secret is read on its own (Terraform-style, 10 at a time)."""
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    from azure.mgmt.authorization import AuthorizationManagementClient

    from cloudsync.providers.azure.client import CallCounter

    calls: Counter[str] = Counter()
    counter = CallCounter(calls)
    credential = DefaultAzureCredential()
    secrets = SecretClient(info["url"], credential, verify_challenge_resource=False, per_call_policies=[counter])
    arm = AuthorizationManagementClient(credential, info["subscription_id"], base_url=info["url"],
                                        credential_scopes=[f"{info['url']}/.default"], per_call_policies=[counter])

    def refresh(name: str) -> None:
        secrets.get_secret(name)
        list(arm.role_assignments.list_for_scope(f"{info['vault_scope']}/secrets/{name}", filter="atScope()"))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(refresh, names))
    elapsed = time.perf_counter() - started
    secrets.close()
    arm.close()
    credential.close()
    return elapsed, calls


def fmt(calls: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(calls.items(), key=lambda kv: -kv[1]))


TRANSACTIONS_PER_SECOND = 400.0  # 4,000 per 10 s per vault, reads included
REFRESH_CALLS_PER_SECRET = 2  # Terraform-style: GET the secret (its value too), list its role assignments


def goal(size: int) -> int:
    """The issue's goal for a plan of N unchanged secrets: ceil(N/25) + 10."""
    return math.ceil(size / 25) + 10


def rows(sizes: tuple[int, ...] = (1_000, 10_000), readers_every: int = 10) -> list[dict[str, Any]]:
    """One row per N: calls by operation of a plan of N unchanged secrets, the goal, the Terraform
    per-secret refresh model and the time at the vault's quota (cloudsync paces at 95 % of it)."""
    from cloudsync.ratelimit import DEFAULT_HEADROOM

    folder = Path(tempfile.mkdtemp(prefix="cloudsync-azure-bench-"))
    fake = FakeProcess(folder / "tls")
    os.environ.update(fake.info["env"])
    os.environ["BENCH_VALUE"] = "benchmark-value-" + os.urandom(8).hex()  # half the secrets take it from env
    os.environ["CLOUDSYNC_AUDIT_LOG"] = str(folder / "audit.jsonl")
    root = folder / "stack"
    pace = TRANSACTIONS_PER_SECOND * DEFAULT_HEADROOM
    found = []
    try:
        for size in sorted(sizes):
            write_stack(root, fake.info, size, readers_every)
            seed(root)
            elapsed, logical, _listed = plan_once(root, metadata_only=False)
            total = sum(logical.values())
            refresh = REFRESH_CALLS_PER_SECRET * size
            found.append({"cloud": "azure", "n": size, "k": size // readers_every if readers_every else 0,
                          "mode": "default", "calls": total, "by_operation": dict(sorted(logical.items())),
                          "goal": goal(size), "meets_goal": total <= goal(size), "terraform_refresh_calls": refresh,
                          "seconds_at_quota": round(total / pace, 1),
                          "terraform_seconds_at_quota": round(refresh / pace, 1),
                          "unpaced_seconds": round(elapsed, 2), "changes": 0})
    finally:
        fake.stop()
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated stack sizes (default 1000,10000)")
    parser.add_argument("--readers-every", type=int, default=10,
                        help="every n-th secret has a reader (a role assignment); 0 for none")
    parser.add_argument("--detail", action="store_true",
                        help="also time a --metadata-only plan and a real per-secret refresh against the fake")
    args = parser.parse_args(argv)
    sizes = tuple(sorted(int(s) for s in args.sizes.split(",")))
    if args.detail:
        detail(sizes, args.readers_every)
        return
    print(f"{'N':>6} {'k':>5} {'calls':>6} {'goal':>5} {'at quota':>9} {'terraform':>9} {'tf at quota':>11}  "
          "calls by operation")
    for row in rows(sizes, args.readers_every):
        ops = ", ".join(f"{op} {n}" for op, n in row["by_operation"].items())
        print(f"{row['n']:>6} {row['k']:>5} {row['calls']:>6} {row['goal']:>5} {row['seconds_at_quota']:>8}s "
              f"{row['terraform_refresh_calls']:>9} {row['terraform_seconds_at_quota']:>10}s  [{ops}] goal "
              f"{'ok' if row['meets_goal'] else 'over'}")


def detail(sizes: tuple[int, ...], readers_every: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cloudsync-azure-bench-"))
    fake = FakeProcess(folder / "tls")
    os.environ.update(fake.info["env"])
    os.environ["BENCH_VALUE"] = "benchmark-value-" + os.urandom(8).hex()  # half the secrets take it from env
    root = folder / "stack"
    print(f"fake vault {fake.info['url']}; every {readers_every}th secret has a reader\n")
    try:
        for size in sizes:
            write_stack(root, fake.info, size, readers_every)
            seconds, applied = seed(root)
            print(f"== {size} secrets (seeded {applied} changes in {seconds:.1f} s)")
            for metadata_only in (False, True):
                fake.ask("clear")
                elapsed, logical, listed = plan_once(root, metadata_only=metadata_only)
                http = Counter(fake.ask("calls"))
                label = "plan --metadata-only" if metadata_only else "plan"
                print(f"  {label:<22} {elapsed:6.2f} s  {sum(logical.values()):5d} calls "
                      f"({sum(logical.values()) / size:.3f}/secret, {listed} remote secrets): {fmt(logical)}")
                print(f"  {'':<22} {'':8}  HTTP at the fake: {fmt(http)}")
            fake.ask("clear")
            names = [f"app--secret-{i:05d}" for i in range(size)]
            elapsed, logical = per_secret_refresh(fake.info, names)
            print(f"  {'per-secret refresh':<22} {elapsed:6.2f} s  {sum(logical.values()):5d} calls "
                  f"({sum(logical.values()) / size:.3f}/secret, values read: {logical['get_secret']}): {fmt(logical)}")
            print()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

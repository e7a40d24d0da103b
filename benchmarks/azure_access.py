"""What the access scan adds to reading an Azure vault, at scale, against the HTTPS fake.

The fake (in its own process, as in azure_plan.py) is seeded directly with N secrets, a
per-secret *Key Vault Secrets User* reader on every 10th one (as cloudsync grants readers),
and broad grants out of band: *Key Vault Secrets Officer* on the vault, a custom role with
``Microsoft.KeyVault/vaults/secrets/*`` on the resource group, *Key Vault Administrator* on
the subscription, *Key Vault Secrets User* to a group on a management group, *Reader* (no
data actions) on the tenant root group. Then it reads the target as plan does and runs
``scan_access`` over every secret, printing the calls of each by operation and the time:
the scan's calls must not depend on N. A second run switches the vault to access policies.

    .venv/bin/python benchmarks/azure_access.py [--sizes 1000,10000] [--readers-every 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from azure_plan import COMMANDS, FakeProcess, fmt  # the sibling benchmark's fake process

GROUP = "00000000-0000-4000-8000-0000000000b1"
BROAD = "00000000-0000-4000-8000-0000000000b2"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _seed(fake: Any, size: int, readers_every: int) -> int:
    """In the fake's process: N secrets, per-secret readers, the broad grants. The assignment count."""
    from tests.fakes.azure.roles import Definition

    fake.reset()
    for i in range(size):
        fake.vault.set_secret(f"app--secret-{i:05d}", {"value": "benchmark-value"})

    def assign(scope: str, role: str, principal: str, principal_type: str = "ServicePrincipal") -> None:
        role_id = f"/subscriptions/{fake.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        fake.rbac.create(scope, str(uuid.uuid4()), {"properties": {"roleDefinitionId": role_id, "principalId": principal,
                                                                   "principalType": principal_type}})

    count = 0
    for i in range(0, size, readers_every or size + 1):
        assign(fake.secret_scope(f"app--secret-{i:05d}"), SECRETS_USER, f"00000000-0000-4000-8000-{i:012d}")
        count += 1
    custom = str(uuid.uuid4())
    fake.roles.add(Definition(custom, "app secrets", "", False, data_actions=("Microsoft.KeyVault/vaults/secrets/*",)))
    assign(fake.vault_scope, SECRETS_OFFICER, BROAD)
    assign(fake.resource_group_scope, custom, BROAD)
    assign(fake.subscription_scope, ADMINISTRATOR, BROAD)
    assign(fake.management_group_scope("mg-workloads"), SECRETS_USER, GROUP, "Group")
    assign(fake.management_group_scope(fake.tenant_id), READER, BROAD)
    return count + 5


def _access_policies(fake: Any) -> None:
    fake.vault_resource.rbac = False
    for principal, secrets in ((BROAD, ["get", "list"]), (GROUP, ["list"])):
        fake.vault_resource.add_policy(principal, secrets)


COMMANDS.update({"seed": _seed, "access_policies": _access_policies})


def read_and_scan(root: Path) -> tuple[float, Counter[str], float, Counter[str], Any]:
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import open_session
    from cloudsync.providers.base import ReadQuery

    with open_session(load_stack(root)) as session:
        provider = session.provider("azure-prod")
        query = ReadQuery(stack="bench", declared=frozenset(), access=frozenset())
        started = time.perf_counter()
        secrets = provider.read(query)
        read_seconds = time.perf_counter() - started
        read_calls = Counter(provider.api_calls)
        started = time.perf_counter()
        scan = provider.scan_access(query, secrets)
        scan_seconds = time.perf_counter() - started
        scan_calls = Counter(provider.api_calls) - read_calls
    return read_seconds, read_calls, scan_seconds, scan_calls, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated vault sizes (default 1000,10000)")
    parser.add_argument("--readers-every", type=int, default=10, help="every n-th secret has a per-secret reader")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cloudsync-azure-access-"))
    fake = FakeProcess(folder / "tls")
    info = fake.info
    os.environ.update(info["env"])
    root = folder / "stack"
    root.mkdir()
    (root / "cloudsync.yaml").write_text(
        "version: 1\nstack: bench\ntargets:\n"
        f"  azure-prod: {{provider: azure, vault_url: '{info['url']}', subscription_id: '{info['subscription_id']}', "
        f"resource_group: '{info['resource_group']}', vault_name: '{info['vault_name']}', arm_endpoint: '{info['url']}'}}\n")
    print(f"fake vault {info['url']}; every {args.readers_every}th secret has a per-secret reader\n")
    try:
        for size in sorted(int(s) for s in args.sizes.split(",")):
            assignments = fake.ask(("seed", size, args.readers_every))
            for model in ("RBAC", "access policies"):
                if model != "RBAC":
                    fake.ask(("access_policies",))
                read_seconds, read_calls, scan_seconds, scan_calls, scan = read_and_scan(root)
                readers = sum(len(r) for r in scan.readers.values())
                print(f"== {size} secrets, {assignments} role assignments, {model}")
                print(f"  read   {read_seconds:6.2f} s  {read_calls.total():5d} calls: {fmt(read_calls)}")
                print(f"  scan   {scan_seconds:6.2f} s  {scan_calls.total():5d} calls added: {fmt(scan_calls)} "
                      f"(role assignments: 0 added, the read's listing is reused)")
                print(f"         {len(scan.readers)} secrets scanned, {readers} reader entries, complete: {scan.complete}")
            print()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

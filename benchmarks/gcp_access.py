"""What the GCP access scan costs: the calls it adds to a plan, and wall time.

Starts the tests' fake (real gRPC on 127.0.0.1) with N secrets of one stack (one in ten
with a reader of its own, a few with a custom role bound on the secret) and a project whose
IAM policy binds ~30 principals through predefined, basic and custom roles, some
conditionally; the project sits under two folders and an organization with policies of
their own. Then it runs what a GCP target runs in a plan: the read (ListSecrets, and one
GetIamPolicy per owned secret: made by the plan anyway), then the scan, whose calls are
counted apart, without ancestors and with ``access_scan: {ancestors: true}``.

Secrets are seeded straight into the fake's store (no RPC): seeding is not what is measured.

    .venv/bin/python benchmarks/gcp_access.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fake lives in the repository

from google.cloud import iam_admin_v1, secretmanager
from google.iam.v1 import policy_pb2

from cloudsync.providers.access import Via
from cloudsync.providers.base import ProviderContext, RateLimits, ReadQuery
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.calls import QuotaLimits
from cloudsync.providers.gcp.rules import GcpTarget
from tests.fakes.gcp import FakeSecretManager

PROJECT = "bench-project"
PARENT = f"projects/{PROJECT}"
ORG, TEAM, APPS = "organizations/700", "folders/710", "folders/720"
READERS_EVERY = 10
CUSTOM_ROLES = (f"{PARENT}/roles/appReader", f"{PARENT}/roles/auditor", f"{ORG}/roles/breakGlass")
SECRET_ROLES_EVERY = 250  # a secret in 250 also binds a custom role on itself


def binding(policy: policy_pb2.Policy, role: str, members: list[str], condition: str | None = None) -> None:
    added = policy.bindings.add(role=role, members=members)
    if condition:
        added.condition.title, added.condition.expression = condition, "request.time < timestamp('2030-01-01T00:00:00Z')"
        policy.version = 3


def seed(fake: FakeSecretManager, size: int) -> None:
    directory, store = fake.directory, fake.store
    directory.add_organization(ORG)
    directory.add_folder(TEAM, ORG)
    directory.add_folder(APPS, TEAM)
    directory.place(PROJECT, APPS)
    for name, permissions in ((CUSTOM_ROLES[0], ["secretmanager.versions.access"]),
                              (CUSTOM_ROLES[1], ["secretmanager.secrets.get", "secretmanager.versions.list"]),
                              (CUSTOM_ROLES[2], ["secretmanager.versions.access"])):
        parent, role_id = name.split("/roles/")
        directory.create_role(parent, role_id, iam_admin_v1.Role.pb()(title=role_id, included_permissions=permissions))
    project = policy_pb2.Policy(version=1)
    binding(project, "roles/owner", ["user:founder@example.com"])
    binding(project, "roles/editor", [f"serviceAccount:{n}@developer.gserviceaccount.com" for n in range(5)])
    binding(project, "roles/viewer", [f"user:dev{n}@example.com" for n in range(15)])
    binding(project, "roles/secretmanager.secretAccessor", ["group:payments@example.com"])
    binding(project, "roles/secretmanager.admin", ["group:platform@example.com"], condition="business hours")
    binding(project, CUSTOM_ROLES[0], [f"serviceAccount:app{n}@{PROJECT}.iam.gserviceaccount.com" for n in range(5)])
    binding(project, CUSTOM_ROLES[1], ["group:audit@example.com"])
    binding(project, CUSTOM_ROLES[2], ["group:oncall@example.com"], condition="incident")
    directory.set_iam_policy(PARENT, "projects", project)
    folder = policy_pb2.Policy(version=1)
    binding(folder, "roles/secretmanager.secretAccessor", ["group:team@example.com"])
    directory.set_iam_policy(TEAM, "folders", folder)
    organization = policy_pb2.Policy(version=1)
    binding(organization, "roles/secretmanager.admin", ["group:security@example.com"])
    directory.set_iam_policy(ORG, "organizations", organization)

    labels = {"managed-by": "cloudsync", "cloudsync-stack": "bench"}
    for i in range(size):
        secret = secretmanager.Secret.pb()(labels=labels)
        secret.replication.automatic.SetInParent()
        name = store.create_secret(PARENT, f"bench__s{i:05d}", secret).name
        own = policy_pb2.Policy(version=1)
        if i % READERS_EVERY == 0:
            binding(own, "roles/secretmanager.secretAccessor", [f"serviceAccount:app@{PROJECT}.iam.gserviceaccount.com"])
        if i % SECRET_ROLES_EVERY == 0:
            binding(own, CUSTOM_ROLES[1], ["group:audit@example.com"])
        if own.bindings:
            store.set_iam_policy(name, own)


def measure(fake: FakeSecretManager, size: int, root: Path, **scan_settings: object) -> None:
    config = GcpTarget(provider="gcp", project=PROJECT, endpoint=fake.address, **scan_settings)  # type: ignore[arg-type]
    provider = GcpProvider("gcp-bench", config, ProviderContext(stack="bench", root=root))
    try:
        query = ReadQuery(stack="bench", declared=frozenset(), access=frozenset())
        started = time.perf_counter()
        secrets = provider.read(query)
        read_seconds = time.perf_counter() - started
        read_calls = Counter(provider.api_calls)
        started = time.perf_counter()
        scan = provider.scan_access(query, secrets)
        scan_seconds = time.perf_counter() - started
        scan_calls = Counter(provider.api_calls) - read_calls
    finally:
        provider.close()
    readers = [r for found in scan.readers.values() for r in found]
    broad = Counter(r.via.value for r in readers if r.via is not Via.SECRET)
    label = "with ancestors" if scan_settings else "project only"
    print(f"  read (made by the plan anyway) {read_seconds:7.2f} s  {sum(read_calls.values()):6d} calls  "
          + ", ".join(f"{m} {n}" for m, n in sorted(read_calls.items())))
    print(f"  scan, {label + ' (added)':<24}{scan_seconds:7.2f} s  {sum(scan_calls.values()):6d} calls  "
          + ", ".join(f"{m} {n}" for m, n in sorted(scan_calls.items())))
    print(f"    {len(readers)} effective readers over {len(scan.readers)} secrets "
          f"({', '.join(f'{v} {n}' for v, n in sorted(broad.items()))} beyond the secrets), complete: {scan.complete}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of secrets")
    args = parser.parse_args()
    # The fake has no quotas: lift the pacing so the run measures cloudsync itself.
    GcpProvider.quota = QuotaLimits(reads_per_minute=6e6, writes_per_minute=6e6, access_per_minute=6e6,
                                    iam_reads_per_minute=6e6, asset_searches_per_minute=6e6,
                                    asset_lists_per_minute=6e6)
    GcpProvider.limits = RateLimits(writes_per_second=1e5, max_parallel=8)
    fake = FakeSecretManager().start()
    try:
        for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
            fake.reset()
            seed(fake, size)
            fake.advance(31 * 60)  # a steady state: older than the asset index's lag window (30 min)
            print(f"\n== {size} secrets ==")
            with tempfile.TemporaryDirectory(prefix="cloudsync-gcp-access-") as tmp:
                measure(fake, size, Path(tmp))
                measure(fake, size, Path(tmp), access_scan={"ancestors": True})
    finally:
        fake.stop()


if __name__ == "__main__":
    main()

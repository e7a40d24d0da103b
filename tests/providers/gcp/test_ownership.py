"""The GCP provider refuses writes to secrets its stack does not own (see tests/providers/ownership.py)."""

from __future__ import annotations

from pathlib import Path

from google.cloud import secretmanager

from cloudsync.providers.base import ProviderContext
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.rules import GcpTarget
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp.conftest import PROJECT
from tests.providers.gcp.test_lifecycle import versions
from tests.providers.ownership import (
    FOREIGN,
    UNOWNED,
    UNOWNED_VALUE,
    assert_foreign_secrets_refused,
    assert_unmanaged_secret_can_be_adopted,
    create_foreign,
)


def _provider(gcp: FakeSecretManager, root: Path, stack: str) -> GcpProvider:
    config = GcpTarget(provider="gcp", project=PROJECT, endpoint=gcp.address)
    return GcpProvider("gcp-prod", config, ProviderContext(stack=stack, root=root))


def test_update_restore_delete_of_unowned_or_other_stack_secrets_are_refused(
        gcp: FakeSecretManager, sm: secretmanager.SecretManagerServiceClient, tmp_path: Path, canary: str) -> None:
    ours, theirs = _provider(gcp, tmp_path, "payments"), _provider(gcp, tmp_path, "billing")
    try:
        create_foreign(theirs)
        legacy = sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": UNOWNED, "secret": {
            "replication": {"automatic": {}}, "labels": {"team": "legacy"}}})
        sm.add_secret_version(request={"parent": legacy.name, "payload": {"data": UNOWNED_VALUE.encode()}})
        names = [f"projects/{PROJECT}/secrets/{n}" for n in (FOREIGN, UNOWNED)]
        before = {n: (sm.get_secret(name=n).etag, versions(sm, n)) for n in names}

        def unchanged() -> None:
            assert {n: (sm.get_secret(name=n).etag, versions(sm, n)) for n in names} == before

        assert_foreign_secrets_refused(ours, canary, unchanged)
        assert_unmanaged_secret_can_be_adopted(ours)
    finally:
        ours.close()
        theirs.close()

"""The Azure provider refuses writes to secrets its stack does not own (see tests/providers/ownership.py)."""

from __future__ import annotations

from pathlib import Path

from cloudsync.providers.azure import AzureProvider
from cloudsync.providers.azure.rules import AzureTarget
from cloudsync.providers.base import ProviderContext
from tests.fakes.azure import AzureFake
from tests.providers.azure.conftest import OutOfBand
from tests.providers.ownership import (
    FOREIGN,
    UNOWNED,
    UNOWNED_VALUE,
    assert_foreign_secrets_refused,
    assert_unmanaged_secret_can_be_adopted,
    create_foreign,
)


def _provider(azure: AzureFake, root: Path, stack: str) -> AzureProvider:
    config = AzureTarget(provider="azure", vault_url=azure.url, subscription_id=azure.subscription_id,
                         resource_group=azure.resource_group, vault_name=azure.vault_name, arm_endpoint=azure.url)
    return AzureProvider("azure-prod", config, ProviderContext(stack=stack, root=root))


def test_update_restore_delete_of_unowned_or_other_stack_secrets_are_refused(
        azure: AzureFake, oob: OutOfBand, tmp_path: Path, canary: str) -> None:
    ours, theirs = _provider(azure, tmp_path, "payments"), _provider(azure, tmp_path, "billing")
    try:
        create_foreign(theirs)
        oob.secrets.set_secret(UNOWNED, UNOWNED_VALUE, tags={"team": "legacy"})
        before = {n: [v.id for v in azure.vault.snapshot(n).versions] for n in (FOREIGN, UNOWNED)}  # type: ignore[union-attr]

        def unchanged() -> None:
            assert {n: [v.id for v in azure.vault.snapshot(n).versions] for n in before} == before  # type: ignore[union-attr]
            assert not azure.vault.deleted

        assert_foreign_secrets_refused(ours, canary, unchanged)
        assert_unmanaged_secret_can_be_adopted(ours)
    finally:
        ours.close()
        theirs.close()

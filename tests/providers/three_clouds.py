"""One stack over the three clouds' fakes at once: their servers reset, the real clients'
environment set, and the targets as cloudsync.yaml declares them."""

from __future__ import annotations

import pytest

from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import ENV, UNSET, MotoServer
from tests.providers.contract.conftest import _FOREIGN_AZURE_ENV


def connect(moto: MotoServer, gcp: FakeSecretManager, azure: AzureFake, monkeypatch: pytest.MonkeyPatch) -> str:
    """Reset the fakes, point the SDKs at them; return the ``targets:`` entries (aws-prod, gcp-prod, azure-prod)."""
    moto.reset()
    gcp.reset()
    azure.reset()
    for key in (*UNSET, *_FOREIGN_AZURE_ENV):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**ENV, **azure.client_env()}.items():
        monkeypatch.setenv(key, value)
    return f"""\
  aws-prod: {{provider: aws, region: us-east-1, endpoint: "{moto.url}"}}
  gcp-prod: {{provider: gcp, project: acme-prod, endpoint: "{gcp.address}"}}
  azure-prod: {{provider: azure, vault_url: "{azure.url}", subscription_id: "{azure.subscription_id}",
               resource_group: "{azure.resource_group}", vault_name: "{azure.vault_name}", arm_endpoint: "{azure.url}"}}
"""

"""Vault calls paced to the vault's quotas: a configured quota is kept, a 429's Retry-After pauses everyone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from cloudsync.providers.azure.pacing import VaultPacing
from cloudsync.ratelimit import buckets
from tests.fakes.azure import AzureFake
from tests.fakes.clock import FakeClock
from tests.providers.azure.stacks import apply

SECRETS = "".join(f"- name: payments/s{i}\n  targets: [azure-prod]\n  value: {{generate: {{length: 16}}}}\n"
                  for i in range(5))


@pytest.mark.parametrize("configured", [True, False])
def test_a_configured_vault_quota_is_kept(azure: AzureFake, azure_stack: Callable[..., Path],
                                          configured: bool) -> None:
    """The vault enforces 2 creates/s; told so, cloudsync is never refused; left at the default, it is."""
    root = azure_stack(SECRETS, subscription_id=None)
    if configured:
        path = root / "cloudsync.yaml"
        path.write_text(path.read_text().replace(
            "{provider: azure,", "{provider: azure, quotas: {creates_per_10_seconds: 20, headroom: 0.9},"))
    azure.enforce_quota(transactions_per_10_seconds=400, creates_per_10_seconds=20)
    _run, report = apply(root)
    assert report.ok, [r.error for r in report.results]  # refused requests are retried either way
    assert azure.quota is not None and azure.quota.served["create"] == 7  # five secrets, the fingerprint key, the apply lock
    assert (azure.calls["fault.quota"] == 0) is configured


def test_retry_after_pauses_the_vault_bucket(azure: AzureFake) -> None:
    clock = FakeClock()
    vault = buckets({"transactions": 400.0, "create": 30.0}, clock=clock, sleep=clock.sleep)
    credential = DefaultAzureCredential()
    client = SecretClient(azure.url, credential, verify_challenge_resource=False,
                          per_retry_policies=[VaultPacing(vault)], retry_backoff_factor=0)
    try:
        azure.inject(429, 1, retry_after="1", operations=["kv.list"])
        assert list(client.list_properties_of_secrets()) == []
    finally:
        client.close()
        credential.close()
    # The retried request waited for the vault's Retry-After in the shared bucket (1 s on its clock),
    # then for one token of a bucket restarted empty (1/380 s).
    assert azure.calls["fault.429"] == 1
    assert clock.waits == [pytest.approx(1.0), pytest.approx(1 / 380)]

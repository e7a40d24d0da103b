"""Target configuration: endpoints, the token authority, the RBAC scope, loopback-only relaxations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.azure.client import is_loopback, operation_of, rbac_scope
from cloudsync.providers.azure.rules import AzureTarget
from tests.fakes.azure import AzureFake
from tests.providers.azure.stacks import apply, plan

GENERATED = """
- name: app/token
  targets: [azure-prod]
  value: {generate: {length: 16}}
  readers: [api]
"""


def _target(**fields: str) -> AzureTarget:
    return AzureTarget(provider="azure", **fields)  # type: ignore[arg-type]


def test_vault_name_defaults_to_the_vault_host() -> None:
    scope = rbac_scope(_target(vault_url="https://acme-prod.vault.azure.net", subscription_id="s", resource_group="g"))
    assert scope is not None
    assert scope.vault_scope == "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/acme-prod"
    assert scope.secret("x") == scope.vault_scope + "/secrets/x"
    # Without subscription and group, readers are not managed (no ARM client, no ARM call).
    assert rbac_scope(_target(vault_url="https://acme-prod.vault.azure.net")) is None
    # A loopback vault has no name in its host: it must be given.
    assert rbac_scope(_target(vault_url="https://127.0.0.1:8443", subscription_id="s", resource_group="g")) is None


@pytest.mark.parametrize(("url", "loopback"), [
    ("https://127.0.0.1:8443", True), ("https://[::1]:8443", True), ("https://localhost", True),
    ("https://127.10.0.1", True), ("https://acme.vault.azure.net", False), ("https://10.0.0.1", False),
    ("https://localhost.example.com", False),
])
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback


def test_operation_names_of_rest_calls() -> None:
    vault = "https://v.vault.azure.net"
    assert operation_of("GET", f"{vault}/secrets?api-version=x") == "list_secrets"
    assert operation_of("GET", f"{vault}/secrets/a/versions") == "list_secret_versions"
    assert operation_of("GET", f"{vault}/secrets/a/") == "get_secret"
    assert operation_of("PATCH", f"{vault}/secrets/a/abc") == "update_secret"
    assert operation_of("POST", f"{vault}/deletedsecrets/a/recover") == "recover_secret"
    assert operation_of("DELETE", f"{vault}/deletedsecrets/a") == "purge_secret"
    arm = "https://management.azure.com/subscriptions/s/providers/Microsoft.Authorization/roleAssignments"
    assert operation_of("GET", arm + "?$filter=atScope()") == "list_role_assignments"
    assert operation_of("PUT", arm + "/0000") == "create_role_assignment"


def test_plain_http_endpoints_are_refused(azure: AzureFake, azure_stack: Callable[..., Path]) -> None:
    root = azure_stack(GENERATED, vault_url=azure.url.replace("https://", "http://"))
    with pytest.raises(CloudsyncError) as refused:
        plan(root, metadata_only=True)
    message = refused.value.diagnostics[0].message
    assert "target azure-prod" in message and "must be an https URL" in message
    assert azure.calls.total() == 0


def test_client_secret_through_an_overridden_authority(azure: AzureFake, azure_stack: Callable[..., Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A service principal (EnvironmentCredential) against the token authority the target
    # names; instance discovery is skipped only because that authority is on loopback.
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    monkeypatch.setenv("AZURE_CLIENT_ID", azure.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", azure.client_secret)
    monkeypatch.setenv("AZURE_TENANT_ID", azure.tenant_id)
    root = azure_stack(GENERATED, authority_endpoint=azure.url, tenant_id=azure.tenant_id)
    _, report = apply(root)
    assert report.ok, [r.error for r in report.results]
    assert azure.calls["aad.token"] >= 2 and azure.calls["mi.token"] == 0  # vault and ARM audiences
    assert plan(root).plan.real_changes == []


def test_arm_endpoint_override_is_used_for_role_assignments(azure: AzureFake,
                                                             azure_stack: Callable[..., Path]) -> None:
    root = azure_stack(GENERATED, arm_endpoint=azure.url.replace("127.0.0.1", "localhost"))
    _, report = apply(root)
    assert report.ok, [r.error for r in report.results]
    port = azure.url.rsplit(":", 1)[1]
    assert azure.hosts[f"arm localhost:{port}"] >= 2
    assert not any(key.startswith("arm 127.0.0.1") for key in azure.hosts)
    assert not any(key.startswith("kv localhost") for key in azure.hosts)

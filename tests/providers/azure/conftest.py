"""Fixtures of the Azure tests: one HTTPS fake per session, reset before each test."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient

from tests.conftest import files_containing
from tests.fakes.azure import AzureFake
from tests.providers.azure import stacks
from tests.providers.azure.stacks import API, AUDITOR, WORKER, target_yaml

# Variables that would make DefaultAzureCredential pick another identity than the fake's.
_FOREIGN_AZURE_ENV = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
                      "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_AUTHORITY_HOST", "MSI_ENDPOINT",
                      "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")


@pytest.fixture
def azure(azure_fake: AzureFake, monkeypatch: pytest.MonkeyPatch) -> AzureFake:
    """The fake, emptied, with this process's environment pointing the real clients at it."""
    azure_fake.reset()
    for key in _FOREIGN_AZURE_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in azure_fake.client_env().items():
        monkeypatch.setenv(key, value)
    return azure_fake


@pytest.fixture(autouse=True)
def _no_value_leaks(azure_fake: AzureFake, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After every test: no value the vault holds (the fingerprint key included) appears in
    any plan or report the engine helpers produced, in the logs, or in a file the test wrote."""
    stacks.OUTPUTS.clear()
    yield
    values = [v for v in azure_fake.vault.all_values() if len(v) >= 8]
    produced = "\n".join([*stacks.OUTPUTS, caplog.text])
    leaked = [v[:4] + "…" for v in values if v in produced]
    assert not leaked, f"values leaked into output: {leaked}"
    for value in values:
        assert files_containing(tmp_path, value) == [], f"a value leaked into a file ({value[:4]}…)"


@pytest.fixture
def cli_env(azure: AzureFake) -> dict[str, str]:
    """Environment for the ``cli`` fixture's subprocess."""
    return azure.client_env()


@dataclass
class OutOfBand:
    """The real clients, used as another operator would (outside cloudsync)."""

    secrets: SecretClient
    authorization: AuthorizationManagementClient
    fake: AzureFake

    def assign(self, secret: str, principal: str, role: str = "4633458b-17de-408a-b874-0445c86b69e6",
               name: str = "5b9c3f0e-8f5e-4c36-9a63-6f1f0d8c0001") -> None:
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        role_id = f"/subscriptions/{self.fake.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        self.authorization.role_assignments.create(
            self.fake.secret_scope(secret), name,
            RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=principal))


@pytest.fixture
def oob(azure: AzureFake) -> Iterator[OutOfBand]:
    credential = DefaultAzureCredential()
    secrets = SecretClient(azure.url, credential, verify_challenge_resource=False)
    authorization = AuthorizationManagementClient(credential, azure.subscription_id, base_url=azure.url,
                                                  credential_scopes=[f"{azure.url}/.default"])
    yield OutOfBand(secrets, authorization, azure)
    secrets.close()
    authorization.close()
    credential.close()


@pytest.fixture
def azure_stack(azure: AzureFake, tmp_path: Path) -> Callable[..., Path]:
    """Write a stack with target ``azure-prod`` on the fake: ``azure_stack(secrets_yaml, **target_fields)``."""

    def write(secrets: str, *, root: Path | None = None, **target: str | None) -> Path:
        folder = root or tmp_path / "stack"
        folder.mkdir(parents=True, exist_ok=True)
        body = textwrap.dedent(secrets).strip("\n")
        (folder / "cloudsync.yaml").write_text(
            "version: 1\nstack: payments\n"
            f"targets:\n  azure-prod: {target_yaml(azure, **target)}\n"
            f"principals:\n  api: {{azure: {API}}}\n  worker: {{azure: {WORKER}}}\n  auditor: {{azure: {AUDITOR}}}\n"
            # These tests are about the provider; tests/policy covers the built-in pack.
            + "policy: {builtin: false}\n"
            + ("secrets:\n" + textwrap.indent(body, "  ") + "\n" if body else ""))
        return folder

    return write

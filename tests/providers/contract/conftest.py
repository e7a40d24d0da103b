"""The contract suite runs every test once per target kind: local, aws, gcp, azure.

Each cloud's fake server is the session's shared one (tests/providers/conftest.py), reset
before the test; the servers a test does not need are never started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from tests.conftest import files_containing
from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import ENV, UNSET, FaultProxy, MotoServer
from tests.providers.contract import drive
from tests.providers.contract.clouds import Aws, Azure, Cloud, Gcp, Local
from tests.providers.contract.drive import Driver

KINDS = ("local", "aws", "gcp", "azure")
_FOREIGN_AZURE_ENV = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_CERTIFICATE_PATH",
                      "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME", "AZURE_AUTHORITY_HOST", "MSI_ENDPOINT",
                      "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")


@pytest.fixture(params=KINDS)
def cloud(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    kind = request.param
    if kind == "local":
        yield Local(tmp_path)
    elif kind == "aws":
        moto: MotoServer = request.getfixturevalue("moto_server")
        moto.reset()
        for key in UNSET:
            monkeypatch.delenv(key, raising=False)
        for key, value in ENV.items():
            monkeypatch.setenv(key, value)
        proxy = FaultProxy(moto.url)
        yield Aws(tmp_path, moto, proxy)
        proxy.close()
    elif kind == "gcp":
        fake: FakeSecretManager = request.getfixturevalue("gcp_server")
        fake.reset()
        gcp = Gcp(tmp_path, fake)
        yield gcp
        gcp.close()
    else:
        azure: AzureFake = request.getfixturevalue("azure_fake")
        azure.reset()
        for key in _FOREIGN_AZURE_ENV:
            monkeypatch.delenv(key, raising=False)
        for key, value in azure.client_env().items():
            monkeypatch.setenv(key, value)
        credential = DefaultAzureCredential()
        client = SecretClient(azure.url, credential, verify_challenge_resource=False)
        yield Azure(tmp_path, azure, client)
        client.close()
        credential.close()


@pytest.fixture
def target(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Driver:
    """cloudsync on a stack whose one target is ``cloud``'s (audit log kept in tmp_path)."""
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return cloud.driver()


@pytest.fixture(autouse=True)
def _no_value_leaks(canary: str, tmp_path: Path) -> Iterator[None]:
    """After every test: the canary is in no plan, report, diagnostic or file the test produced."""
    drive.OUTPUTS.clear()
    yield
    leaked = [text[:60] for text in drive.OUTPUTS if canary in text]
    assert not leaked, f"a value leaked into output: {leaked}"
    assert files_containing(tmp_path, canary) == []
    drive.OUTPUTS.clear()

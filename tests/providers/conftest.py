"""The fake servers, one of each per test session, shared by every provider test: each
cloud's own tests and the contract suite in tests/providers/contract/."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.azure import AzureFake
from tests.fakes.gcp import TLS_NAMES, FakeSecretManager
from tests.fakes.moto_server import moto_server
from tests.fakes.tls import make_tls

__all__ = ["azure_fake", "gcp_server", "moto_server"]


@pytest.fixture(scope="session")
def gcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSecretManager]:
    tls = make_tls(tmp_path_factory.mktemp("gcp-tls"), TLS_NAMES)
    # gRPC reads its default trust roots once per process, at the first TLS channel: trust the
    # test CA from the start, so every later TLS channel of this session verifies the fake.
    os.environ["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = str(tls.ca_pem)
    fake = FakeSecretManager(tls).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def azure_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureFake]:
    fake = AzureFake(make_tls(tmp_path_factory.mktemp("azure-tls"))).start()
    yield fake
    fake.stop()

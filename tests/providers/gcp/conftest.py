"""Fixtures of the GCP provider tests: one fake Secret Manager per session, reset per test.

The fake listens twice: plain gRPC for loopback endpoints (no credentials, as cloudsync
reaches an emulator) and TLS with bearer tokens for the path every real target takes
(``gcp_tls``: Application Default Credentials from a service-account key file, the test
CA trusted through the standard variables).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.cloud import secretmanager

from tests.conftest import assert_no_canary, files_containing
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine

PROJECT = "acme-prod"


@pytest.fixture
def gcp(gcp_server: FakeSecretManager) -> FakeSecretManager:
    """The shared fake, emptied: no secrets, no faults, zeroed counters."""
    gcp_server.reset()
    return gcp_server


# Variables that would make Application Default Credentials pick another identity or trust.
_FOREIGN_GOOGLE_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG",
                       "GOOGLE_API_USE_CLIENT_CERTIFICATE", "GOOGLE_API_USE_MTLS_ENDPOINT", "grpc_proxy",
                       "https_proxy", "HTTPS_PROXY", "no_grpc_proxy", "no_proxy", "NO_PROXY")


@pytest.fixture
def gcp_tls(gcp: FakeSecretManager, tmp_path_factory: pytest.TempPathFactory,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a real target: a service-account key as ADC, the test CA trusted for
    gRPC and HTTPS. Set in this process; returned for a ``cloudsync`` subprocess."""
    assert gcp.tls is not None and gcp.credentials is not None
    key = gcp.credentials.write_key_file(tmp_path_factory.mktemp("gcp-adc") / "key.json")
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key), "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(gcp.tls.ca_pem),
           "REQUESTS_CA_BUNDLE": str(gcp.tls.ca_pem)}
    for name in _FOREIGN_GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(autouse=True)
def _no_value_leaks(canary: str, tmp_path: Path) -> Iterator[None]:
    """After every test: the canary is in no plan, report, diagnostic or file it produced."""
    engine.OUTCOMES.clear()
    yield
    assert_no_canary(canary, *(o.rendered() for o in engine.OUTCOMES))
    assert files_containing(tmp_path, canary) == []
    engine.OUTCOMES.clear()


@pytest.fixture
def sm(gcp: FakeSecretManager) -> Iterator[secretmanager.SecretManagerServiceClient]:
    """The real client on the fake, for out-of-band edits and for tests of the fake."""
    client = gcp.client()
    yield client
    client.transport.close()


@pytest.fixture
def gcp_stack(write_stack: Callable[..., Path], gcp: FakeSecretManager) -> Callable[..., Path]:
    """Write a stack whose target ``gcp-prod`` points at the fake; ``secrets`` is YAML text.

    ``endpoint`` defaults to the fake's plain loopback port; None leaves it out (the public
    endpoints, reached through a CONNECT proxy in the tests that do)."""

    def write(secrets: str, *, target_extra: str = "", principals: str = "", stack: str = "payments",
              root: Path | None = None, endpoint: str | None = gcp.address) -> Path:
        where = f', endpoint: "{endpoint}"' if endpoint is not None else ""
        config = f"""\
version: 1
stack: {stack}
targets:
  gcp-prod: {{provider: gcp, project: {PROJECT}{where}{target_extra}}}
principals:
  api: {{gcp: "serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"}}
  worker: {{gcp: "serviceAccount:worker@{PROJECT}.iam.gserviceaccount.com"}}
{textwrap.indent(textwrap.dedent(principals), "  ")}
policy: {{builtin: false}}  # these tests are about the provider; tests/policy covers the pack
secrets:
{textwrap.indent(textwrap.dedent(secrets), "  ")}
"""
        return write_stack(config, root=root)

    return write

"""Fixtures of the GCP provider tests: one fake Secret Manager per session, reset per test."""

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


@pytest.fixture(scope="session")
def gcp_server() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager().start()
    yield fake
    fake.stop()


@pytest.fixture
def gcp(gcp_server: FakeSecretManager) -> FakeSecretManager:
    """The shared fake, emptied: no secrets, no faults, zeroed counters."""
    gcp_server.reset()
    return gcp_server


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
    """Write a stack whose target ``gcp-prod`` points at the fake; ``secrets`` is YAML text."""

    def write(secrets: str, *, target_extra: str = "", principals: str = "", stack: str = "payments",
              root: Path | None = None) -> Path:
        config = f"""\
version: 1
stack: {stack}
targets:
  gcp-prod: {{provider: gcp, project: {PROJECT}, endpoint: "{gcp.address}"{target_extra}}}
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

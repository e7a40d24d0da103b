"""The path every real GCP target takes: TLS, Application Default Credentials, the public,
regional and private endpoints by their host names.

The fake's TLS port answers for Google's host names with a certificate of the test CA and
demands a bearer token; a CONNECT proxy (``grpc_proxy``, as gRPC honours it) tunnels each
host name to it and records which one the client asked for, so no DNS is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from tests.fakes.connect_proxy import ConnectProxy
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.names import project_number
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

SECRET = """\
- name: payments/db-password
  targets: [gcp-prod]
  value: {env: DB_PASSWORD}
  readers: [api]
"""


@pytest.fixture
def proxy(gcp: FakeSecretManager, gcp_tls: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectProxy]:
    """Every gRPC connection goes through a CONNECT proxy that ends at the fake's TLS port."""
    tunnel = ConnectProxy(("127.0.0.1", gcp.tls_port))
    monkeypatch.setenv("grpc_proxy", tunnel.url)
    yield tunnel
    tunnel.close()


def test_an_https_endpoint_uses_tls_and_the_service_accounts_credentials(
        gcp: FakeSecretManager, gcp_tls: dict[str, str], gcp_stack: Callable[..., Path],
        canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gcp.credentials is not None
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = gcp_stack(SECRET, endpoint=f"https://{gcp.tls_address}")
    engine.apply(root)
    assert engine.plan(root).changes() == []
    assert gcp.credentials.self_signed > 0  # every call carried the account's own JWT
    assert gcp.store.payloads().count(canary.encode()) == 1


def test_the_regional_endpoint_is_the_locations_own_host(
        gcp: FakeSecretManager, proxy: ConnectProxy, gcp_stack: Callable[..., Path],
        canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = gcp_stack(SECRET, endpoint=None, target_extra=", location: us-east1")
    engine.apply(root)
    assert engine.plan(root).changes() == []
    # Secrets at the location's own host; the access scan's project policy at Resource Manager (global).
    assert set(proxy.targets) == {"secretmanager.us-east1.rep.googleapis.com:443",
                                  "cloudresourcemanager.googleapis.com:443"}
    regional = f"projects/{project_number(PROJECT)}/locations/us-east1/secrets/"
    assert [n for n in gcp.store.secret_names() if not n.rsplit("/", 1)[1].startswith("cloudsync-")] == [
        regional + "payments__db-password"]


def test_a_global_target_uses_the_global_endpoint_and_a_private_one_its_own_host(
        gcp: FakeSecretManager, proxy: ConnectProxy, gcp_stack: Callable[..., Path], tmp_path: Path,
        canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.apply(gcp_stack(SECRET, endpoint=None))
    assert set(proxy.targets) == {"secretmanager.googleapis.com:443", "cloudresourcemanager.googleapis.com:443"}
    proxy.targets.clear()
    private = gcp_stack(SECRET, endpoint="secretmanager.private.example:443", root=tmp_path / "private")
    assert engine.plan(private).changes() == []  # the same project, reached privately
    assert set(proxy.targets) == {"secretmanager.private.example:443"}


def test_rejected_credentials_are_one_clear_error_naming_the_fix(
        gcp: FakeSecretManager, gcp_tls: dict[str, str], gcp_stack: Callable[..., Path]) -> None:
    assert gcp.credentials is not None
    root = gcp_stack(SECRET.replace("  value: {env: DB_PASSWORD}\n", ""), endpoint=f"https://{gcp.tls_address}")
    gcp.credentials.revoke()
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(root, metadata_only=True)
    (diagnostic,) = raised.value.diagnostics
    assert "the credentials were rejected" in diagnostic.message and "project acme-prod" in diagnostic.message
    assert "failed (credentials): ListSecrets" in diagnostic.message  # the kind, then the call; -v adds UNAUTHENTICATED
    assert "gcloud auth application-default login" in (diagnostic.hint or "")

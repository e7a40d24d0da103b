"""The fake's Cloud Asset Inventory, through the real ``AssetServiceClient`` over gRPC: what the
index answers, its pages, its lag on the fake's clock, and its refusals."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import asset_v1, secretmanager
from google.iam.v1 import policy_pb2

from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.assets import AssetClient
from tests.providers.gcp.conftest import PROJECT

SECRET = "secretmanager.googleapis.com/Secret"
VERSION = "secretmanager.googleapis.com/SecretVersion"
Client = secretmanager.SecretManagerServiceClient


@pytest.fixture
def assets(gcp: FakeSecretManager) -> Iterator[asset_v1.AssetServiceClient]:
    found = AssetClient(gcp.address)
    yield found.client
    found.close()


def make(sm: Client, name: str, versions: int = 1, reader: str | None = None) -> None:
    sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": name,
                              "secret": {"replication": {"automatic": {}}}})
    for i in range(versions):
        sm.add_secret_version(request={"parent": f"projects/{PROJECT}/secrets/{name}", "payload": {"data": b"%d" % i}})
    if reader:
        sm.set_iam_policy(request={"resource": f"projects/{PROJECT}/secrets/{name}", "policy": policy_pb2.Policy(
            bindings=[policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[reader])])})


def versions(assets: asset_v1.AssetServiceClient) -> list[tuple[str, str]]:
    request = asset_v1.ListAssetsRequest(parent=f"projects/{PROJECT}", asset_types=[VERSION], page_size=2,
                                         content_type=asset_v1.ContentType.RESOURCE)
    return [(a.name.rsplit("/secrets/", 1)[1], a.resource.data["state"]) for a in assets.list_assets(request=request)]


def bound(assets: asset_v1.AssetServiceClient) -> list[str]:
    request = asset_v1.SearchAllIamPoliciesRequest(scope=f"projects/{PROJECT}", asset_types=[SECRET])
    return [r.resource.rsplit("/", 1)[1] for r in assets.search_all_iam_policies(request=request)]


def test_the_index_lists_every_version_over_pages_and_only_policies_with_bindings(
        gcp: FakeSecretManager, sm: Client, assets: asset_v1.AssetServiceClient) -> None:
    make(sm, "a", versions=2, reader="user:ann@example.com")
    make(sm, "b", versions=1)
    sm.disable_secret_version(request={"name": f"projects/{PROJECT}/secrets/a/versions/1"})
    assert versions(assets) == [("a/versions/1", "DISABLED"), ("a/versions/2", "ENABLED"), ("b/versions/1", "ENABLED")]
    assert gcp.calls["Assets.ListAssets"] == 2  # pages of 2, followed by the client's pager
    assert bound(assets) == ["a"]


def test_the_index_trails_the_store_by_its_lag_on_the_fakes_clock(
        gcp: FakeSecretManager, sm: Client, assets: asset_v1.AssetServiceClient) -> None:
    make(sm, "old", versions=1)
    gcp.index_lag(600)
    gcp.advance(601)
    make(sm, "new", versions=1, reader="user:ann@example.com")
    assert versions(assets) == [("old/versions/1", "ENABLED")]
    assert bound(assets) == []
    gcp.advance(600)
    assert versions(assets) == [("new/versions/1", "ENABLED"), ("old/versions/1", "ENABLED")]
    assert bound(assets) == ["new"]


def test_a_deleted_secret_leaves_the_index_after_the_lag(
        gcp: FakeSecretManager, sm: Client, assets: asset_v1.AssetServiceClient) -> None:
    make(sm, "gone", versions=1)
    gcp.index_lag(60)
    gcp.advance(61)
    sm.delete_secret(request={"name": f"projects/{PROJECT}/secrets/gone"})
    assert versions(assets) == [("gone/versions/1", "ENABLED")]  # still indexed
    gcp.advance(61)
    assert versions(assets) == []


def test_the_index_refuses_unknown_asset_types_and_names_its_permissions(
        gcp: FakeSecretManager, assets: asset_v1.AssetServiceClient) -> None:
    with pytest.raises(gexc.InvalidArgument):
        list(assets.list_assets(request={"parent": f"projects/{PROJECT}", "asset_types": ["compute.googleapis.com/Disk"]}))
    gcp.deny("Assets.SearchAllIamPolicies")
    with pytest.raises(gexc.PermissionDenied, match=r"cloudasset\.assets\.searchAllIamPolicies"):
        bound(assets)
    gcp.reset()
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 1, methods=["Assets.ListAssets"])
    with pytest.raises(gexc.ServiceUnavailable):  # the library's own retry off, as cloudsync calls it
        list(assets.list_assets(request={"parent": f"projects/{PROJECT}", "asset_types": [VERSION]}, retry=None))

"""Cloud Asset Inventory (``google.cloud.asset.v1.AssetService``), served beside the fake
Secret Manager: ``SearchAllIamPolicies`` and ``ListAssets`` over the secrets the store holds.

Like the real index it is eventually consistent: every change the store makes is journalled
with the fake's clock, and the index answers from the journal as of ``now - lag`` (``lag``
seconds, 0 by default). Tests move the clock with ``FakeSecretManager.advance``, so no test
sleeps. ``read_time`` is the clock's now, as the service reports when the snapshot was
taken, not how fresh its data is.

Modelled on the API reference: scope/parent ``projects/<id or number>``, asset types
``secretmanager.googleapis.com/Secret`` and ``.../SecretVersion`` (anything else is
INVALID_ARGUMENT), full resource names ``//secretmanager.googleapis.com/projects/<number>/...``,
SearchAllIamPolicies pages capped at 500 and only for resources whose policy has a binding,
ListAssets pages of at most 1,000 with ``RESOURCE`` content (the REST representation as a
Struct), opaque page tokens bound to the query. Regional secrets are not indexed here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import asset_v1
from google.protobuf import struct_pb2

from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.names import parse_parent

SERVICE = "google.cloud.asset.v1.AssetService"
SECRET_TYPE = "secretmanager.googleapis.com/Secret"
VERSION_TYPE = "secretmanager.googleapis.com/SecretVersion"
PREFIX = "//secretmanager.googleapis.com/"
SEARCH_CAP = 500
LIST_CAP = 1000

PERMISSIONS = {
    "Assets.SearchAllIamPolicies": "cloudasset.assets.searchAllIamPolicies",
    "Assets.ListAssets": "cloudasset.assets.listResource",
}
# "All Cloud Asset Inventory calls require the serviceusage.services.use permission."
ALSO = {method: ("serviceusage.services.use",) for method in PERMISSIONS}


@dataclass(frozen=True)
class Entry:
    """A secret as the index learns it: its policy, and its versions (number -> state name, create time)."""

    policy: Any  # policy_pb2.Policy
    versions: dict[int, tuple[str, Any]]  # number -> (state name, Timestamp)


class Index:
    """The journal of the store's changes and the lagging view the index answers from."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._journal: list[tuple[float, str, Entry | None]] = []
        self.lag = 0.0  # seconds the index trails the store

    def record(self, name: str, entry: Entry | None) -> None:
        """The store changed secret ``name`` (None: it is gone)."""
        with self._lock:
            self._journal.append((self._clock(), name, entry))

    def view(self) -> dict[str, Entry]:
        """Every indexed secret as of ``now - lag``."""
        horizon = self._clock() - self.lag
        seen: dict[str, Entry | None] = {}
        with self._lock:
            for when, name, entry in self._journal:
                if when <= horizon:
                    seen[name] = entry
        return {name: entry for name, entry in seen.items() if entry is not None}

    def now(self) -> float:
        return self._clock()


def _types(requested: Any, allowed: set[str]) -> set[str]:
    asked = set(requested)
    unknown = asked - {SECRET_TYPE, VERSION_TYPE}
    if unknown:
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid asset type: {sorted(unknown)[0]}")
    return asked & allowed if asked else allowed


def _scope(text: str) -> str:
    """``projects/<id or number>`` -> ``projects/<number>/secrets/`` (the names to match)."""
    if not text.startswith("projects/"):
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid scope/parent: {text!r}")
    return parse_parent(text).name + "/secrets/"


def search_all_iam_policies(index: Index, request: Any, cap: int = SEARCH_CAP) -> Any:
    prefix = _scope(request.scope)
    if request.query:
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "the fake supports no query: search everything in scope")
    if not _types(request.asset_types, {SECRET_TYPE}):
        return asset_v1.SearchAllIamPoliciesResponse.pb()()
    project = prefix[:-len("/secrets/")]
    found = sorted((name, entry) for name, entry in index.view().items()
                   if name.startswith(prefix) and entry.policy.bindings)
    size = min(request.page_size or 100, SEARCH_CAP, cap) if request.page_size >= 0 else request.page_size
    page, token = _page(found, size, request.page_token, f"iam\n{request.scope}", SEARCH_CAP)
    response = asset_v1.SearchAllIamPoliciesResponse.pb()(next_page_token=token)
    for name, entry in page:
        result = response.results.add(resource=PREFIX + name, asset_type=SECRET_TYPE, project=project)
        result.policy.CopyFrom(entry.policy)
    return response


def list_assets(index: Index, request: Any, cap: int = LIST_CAP) -> Any:
    prefix = _scope(request.parent)
    if request.HasField("read_time"):
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "the fake answers about the present only")
    types = _types(request.asset_types, {SECRET_TYPE, VERSION_TYPE})
    project = prefix[:-len("/secrets/")]
    rows: list[tuple[str, str, Any]] = []  # (asset name, type, data)
    for name, entry in sorted(index.view().items()):
        if not name.startswith(prefix):
            continue
        if SECRET_TYPE in types:
            rows.append((name, SECRET_TYPE, {"name": name}))
        if VERSION_TYPE in types:
            for number, (state, created) in sorted(entry.versions.items()):
                version = f"{name}/versions/{number}"
                rows.append((version, VERSION_TYPE, {"name": version, "state": state,
                                                     "createTime": created.ToJsonString()}))
    size = min(request.page_size or 100, LIST_CAP, cap) if request.page_size >= 0 else request.page_size
    page, token = _page(rows, size, request.page_token, f"list\n{request.parent}\n{sorted(types)}", LIST_CAP)
    response = asset_v1.ListAssetsResponse.pb()(next_page_token=token)
    response.read_time.FromNanoseconds(int(index.now() * 1e9))
    resource_content = request.content_type == asset_v1.ContentType.RESOURCE
    for name, kind, data in page:
        asset = response.assets.add(name=PREFIX + name, asset_type=kind, ancestors=[project])
        if resource_content:
            asset.resource.version = "v1"
            asset.resource.discovery_name = kind.rsplit("/", 1)[1]
            asset.resource.parent = PREFIX + name.rsplit("/versions/", 1)[0] if kind == VERSION_TYPE else ""
            asset.resource.data.CopyFrom(_struct(data))
    return response


def _page(items: list[Any], size: int, token: str, scope: str, cap: int) -> tuple[list[Any], str]:
    from tests.fakes.gcp.store import _page as page  # the store's own paging (it imports this module)

    return page(items, size, token, scope, cap)


def _struct(data: dict[str, str]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def handlers(fake: Any, wrap: Callable[[str, Callable[[Any], Any]], Any]) -> list[grpc.GenericRpcHandler]:
    """The AssetService handlers, each wrapped by the fake's faults, denials and counting."""
    table = {
        "SearchAllIamPolicies": (asset_v1.SearchAllIamPoliciesRequest.pb(), asset_v1.SearchAllIamPoliciesResponse.pb(),
                                 lambda r: search_all_iam_policies(fake.store.index, r, fake.max_page_size)),
        "ListAssets": (asset_v1.ListAssetsRequest.pb(), asset_v1.ListAssetsResponse.pb(),
                       lambda r: list_assets(fake.store.index, r, fake.max_page_size)),
    }
    methods = {
        method: grpc.unary_unary_rpc_method_handler(
            wrap(f"Assets.{method}", body), request_deserializer=request.FromString,
            response_serializer=response.SerializeToString)
        for method, (request, response, body) in table.items()}
    return [grpc.method_handlers_generic_handler(SERVICE, methods)]


class AssetClient:
    """The real AssetServiceClient on the fake's plain port (tests look at the index with it)."""

    def __init__(self, address: str) -> None:
        from google.cloud.asset_v1.services.asset_service.transports import AssetServiceGrpcTransport

        self._channel = grpc.insecure_channel(address)
        self.client = asset_v1.AssetServiceClient(transport=AssetServiceGrpcTransport(channel=self._channel))

    def close(self) -> None:
        self._channel.close()

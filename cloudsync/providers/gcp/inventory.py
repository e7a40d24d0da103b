"""Cloud Asset Inventory: every secret's IAM policy and versions in a few paged calls.

Secret Manager has no bulk read of IAM policies or versions: ``ListSecrets`` carries
neither, and no field of ``Secret`` is documented to move when a version is added or a
policy is set (the resource has no update time; its etag is documented only as the etag
of the stored Secret). Cloud Asset Inventory indexes both:

- ``SearchAllIamPolicies`` scoped to the project, asset type ``Secret``: one result per
  secret that has any IAM binding, 500 per page (the service's cap);
- ``ListAssets`` of asset type ``SecretVersion``, content ``RESOURCE``: every version with
  its state and creation time, 1,000 per page (the maximum), and the snapshot's
  ``read_time`` on the service's clock.

The index is eventually consistent ("almost all asset updates are available in minutes",
asset-types page) and documented as unfit for real-time enforcement, so cloudsync never
takes its word for a change: anything it flags is read directly (:mod:`.read`), and what it
may not have seen yet is read directly too (secrets created within the lag window). See
docs/providers/gcp.md for what is detected, and when.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.mapping import Latest, PolicyView
from cloudsync.providers.gcp.scan_clients import ScanClients

SECRET_TYPE = "secretmanager.googleapis.com/Secret"  # noqa: S105 (an asset type, not a password)
VERSION_TYPE = "secretmanager.googleapis.com/SecretVersion"
ASSET_PREFIX = "//secretmanager.googleapis.com/"
SEARCH_PAGE = 500  # SearchAllIamPolicies caps pages at 500
LIST_PAGE = 1000  # ListAssets' maximum page size
_NANOS = re.compile(r"(\.\d+)")  # Python parses at most 6 fractional digits
MAX_PAGES = 10_000  # 10 million versions: far beyond any project; a token loop cannot run forever


@dataclass(frozen=True)
class Inventory:
    """What the index holds, keyed by the secret's relative name (``projects/<number>/secrets/<id>``)."""

    policies: Mapping[str, PolicyView]  # secrets with at least one binding, as indexed (unconfirmed)
    newest: Mapping[str, Latest]  # the newest version of each secret that has any, as indexed
    read_time: datetime | None  # when the service took the snapshot, on its clock


def sweep(clients: ScanClients, caller: Caller, project: str) -> Inventory:
    """Both sweeps of ``projects/<project>``; ProviderError when either cannot be read."""
    assets = clients.types("assets")
    client = clients.client("assets")
    scope = f"projects/{project}"
    return Inventory(policies=_policies(assets, client, caller, scope), **_versions(assets, client, caller, scope))


def _relative(full_name: str) -> str | None:
    return full_name[len(ASSET_PREFIX):] if full_name.startswith(ASSET_PREFIX) else None


def _policies(assets: Any, client: Any, caller: Caller, scope: str) -> dict[str, PolicyView]:
    found: dict[str, PolicyView] = {}
    token = ""
    for _ in range(MAX_PAGES):
        request = assets.SearchAllIamPoliciesRequest(scope=scope, asset_types=[SECRET_TYPE], page_size=SEARCH_PAGE,
                                                     page_token=token)
        page = caller("Assets.SearchAllIamPolicies", client.search_all_iam_policies, request, resource=scope)
        for result in page.results:
            raw = assets.IamPolicySearchResult.pb(result)
            name = _relative(raw.resource)
            if name is not None and raw.asset_type == SECRET_TYPE and raw.policy.bindings:
                found[name] = PolicyView.from_pb(raw.policy, confirmed=False)
        token = page.next_page_token
        if not token:
            break
    return found


def _versions(assets: Any, client: Any, caller: Caller, scope: str) -> dict[str, Any]:
    newest: dict[str, Latest] = {}
    read_time: datetime | None = None
    token = ""
    for _ in range(MAX_PAGES):
        request = assets.ListAssetsRequest(parent=scope, asset_types=[VERSION_TYPE], page_size=LIST_PAGE,
                                           content_type=assets.ContentType.RESOURCE, page_token=token)
        page = caller("Assets.ListAssets", client.list_assets, request, resource=scope)
        if read_time is None:
            when = page.read_time  # the first page's: the oldest a later page can be
            read_time = when if isinstance(when, datetime) and when.year > 1970 else None
        for item in page.assets:
            asset = assets.Asset.pb(item)
            secret, _, number = (_relative(asset.name) or "").partition("/versions/")
            if not secret or not number.isdigit() or (secret in newest and newest[secret].number >= int(number)):
                continue
            fields = asset.resource.data.fields
            state = fields["state"].string_value if "state" in fields else "STATE_UNSPECIFIED"
            created = _timestamp(fields["createTime"].string_value) if "createTime" in fields else None
            newest[secret] = Latest(number=int(number), enabled=state == "ENABLED", state=state, created=created)
        token = page.next_page_token
        if not token:
            break
    return {"newest": newest, "read_time": read_time}


def _timestamp(text: str) -> datetime | None:
    """An RFC 3339 timestamp as the REST representation carries it (Z-normalised, 0 to 9 fractional digits)."""
    text = _NANOS.sub(lambda m: m[1][:7], text.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None

"""The one table of what cloudsync calls on Google Cloud, and why.

Each RPC maps to the IAM permission it needs and the quota it counts against; each
operation lists the RPCs its code paths make. Permission errors, ``cloudsync permissions``
and the rate limiter all read from here, so they cannot disagree with the code.

Secret Manager RPCs are named as the service names them (``ListSecrets``); the RPCs of the
access scan on other services carry their service's name (``Projects.GetIamPolicy``,
``IAM.GetRole``), so counts and messages never confuse a project's policy with a secret's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cloudsync.providers.base import Operation


class Quota(StrEnum):
    """Secret Manager's per-project request quotas (checked: 600 / 600 / 90,000 per minute), the
    read quotas of Resource Manager and IAM that the access scan's few calls count against, and
    Cloud Asset Inventory's."""

    READ = "read"
    WRITE = "write"
    ACCESS = "access"
    IAM_READ = "iam-read"
    # Cloud Asset Inventory's per-project quotas (checked: SearchAllIamPolicies 400/min,
    # ListAssets 100/min; https://cloud.google.com/asset-inventory/docs/quota).
    ASSET_SEARCH = "asset-search"
    ASSET_LIST = "asset-list"


@dataclass(frozen=True)
class Method:
    permission: str
    quota: Quota
    why: str
    also: tuple[str, ...] = ()  # further permissions the call checks

    @property
    def permissions(self) -> tuple[str, ...]:
        return (self.permission, *self.also)


# "All Cloud Asset Inventory calls require the serviceusage.services.use permission"
# (asset-inventory/docs/access-control), on the project the calls are billed to.
_ASSET_CALLS = ("serviceusage.services.use",)


METHODS: Mapping[str, Method] = {
    "ListSecrets": Method("secretmanager.secrets.list", Quota.READ, "list secrets with their metadata, in bulk"),
    "GetSecretVersion": Method("secretmanager.versions.get", Quota.READ,
                               "see which version is latest (out-of-band writes), never the value"),
    "GetIamPolicy": Method("secretmanager.secrets.getIamPolicy", Quota.READ, "read who may read each secret"),
    "AccessSecretVersion": Method("secretmanager.versions.access", Quota.ACCESS,
                                  "read the fingerprint key and `from` sources"),
    "GetSecret": Method("secretmanager.secrets.get", Quota.READ,
                        "re-read a secret after a conflict, a retried create or a held lock"),
    "CreateSecret": Method("secretmanager.secrets.create", Quota.WRITE, "create secrets and the apply lock"),
    "UpdateSecret": Method("secretmanager.secrets.update", Quota.WRITE,
                           "labels, description annotation, expiry, value record"),
    "DeleteSecret": Method("secretmanager.secrets.delete", Quota.WRITE,
                           "delete secrets no longer declared; release the apply lock"),
    "AddSecretVersion": Method("secretmanager.versions.add", Quota.WRITE, "write a value"),
    "ListSecretVersions": Method("secretmanager.versions.list", Quota.READ,
                                 "the state and etag of cloudsync's versions beyond keep_versions; "
                                 "`cloudsync access --versions`"),
    "DisableSecretVersion": Method("secretmanager.versions.disable", Quota.WRITE,
                                   "disable cloudsync's own versions beyond keep_versions, and superseded versions once their "
                                   "grace period ends (never destroyed)"),
    "SetIamPolicy": Method("secretmanager.secrets.setIamPolicy", Quota.WRITE,
                           "grant and revoke roles/secretmanager.secretAccessor"),
    # The inventory sweep (inventory.py): every secret's IAM policy and versions in a few pages.
    "Assets.SearchAllIamPolicies": Method("cloudasset.assets.searchAllIamPolicies", Quota.ASSET_SEARCH,
                                          "find secrets with IAM grants in bulk, instead of one read per secret",
                                          _ASSET_CALLS),
    "Assets.ListAssets": Method("cloudasset.assets.listResource", Quota.ASSET_LIST,
                                "find out-of-band versions in bulk, instead of one read per secret", _ASSET_CALLS),
    # The access scan: grants at broader scopes than the secret (see access.py).
    "Projects.GetIamPolicy": Method("resourcemanager.projects.getIamPolicy", Quota.IAM_READ,
                                    "who can read every secret through the project's IAM policy"),
    "IAM.GetRole": Method("iam.roles.get", Quota.IAM_READ,
                          "whether a custom role (or a basic role) lets its members read secret values"),
    "Projects.GetProject": Method("resourcemanager.projects.get", Quota.IAM_READ,
                                  "find the project's folder (access_scan.ancestors: true)"),
    "Folders.GetFolder": Method("resourcemanager.folders.get", Quota.IAM_READ,
                                "find a folder's parent folder or organization (access_scan.ancestors: true)"),
    "Folders.GetIamPolicy": Method("resourcemanager.folders.getIamPolicy", Quota.IAM_READ,
                                   "who can read every secret through a folder's IAM policy (access_scan.ancestors)"),
    "Organizations.GetIamPolicy": Method("resourcemanager.organizations.getIamPolicy", Quota.IAM_READ,
                                         "who can read every secret through the organization's IAM policy "
                                         "(access_scan.ancestors)"),
}

_READ_METADATA = ("ListSecrets", "GetSecretVersion", "GetIamPolicy")
# With inventory: true (the default). Without these permissions a plan still works: it reads
# every owned secret directly, as with inventory: false, and says so.
INVENTORY_CALLS = ("Assets.SearchAllIamPolicies", "Assets.ListAssets")
# Every plan, drift and apply runs the access scan (unless the target sets access_scan: false):
# the project's policy and the roles it, or a secret's policy, names. Granted in the project.
SCAN_CALLS = ("Projects.GetIamPolicy", "IAM.GetRole")
# With access_scan.ancestors: permissions granted on the folders and the organization, since
# a project role cannot hold them (a list of ancestors skips the two lookups).
ANCESTOR_CALLS: Sequence[str] = ("Projects.GetProject", "Folders.GetFolder", "Folders.GetIamPolicy",
                                 "Organizations.GetIamPolicy", "IAM.GetRole")
LOOKUPS = ("Projects.GetProject", "Folders.GetFolder")

CALLS: Mapping[Operation, Sequence[str]] = {
    Operation.PLAN_METADATA: (*_READ_METADATA, *INVENTORY_CALLS, *SCAN_CALLS),
    Operation.PLAN: (*_READ_METADATA, *INVENTORY_CALLS, "AccessSecretVersion", *SCAN_CALLS),
    Operation.APPLY: (*_READ_METADATA, *INVENTORY_CALLS, "AccessSecretVersion", "GetSecret", "CreateSecret", "UpdateSecret",
                      "DeleteSecret", "AddSecretVersion", "ListSecretVersions", "DisableSecretVersion",
                      "SetIamPolicy", *SCAN_CALLS),
}


def calls_for(operation: Operation, *, access_scan: bool = True, inventory: bool = True) -> list[str]:
    """The RPCs of ``operation`` in the project; without the scan's (or the inventory's) when the target opts out."""
    return [m for m in CALLS[operation]
            if (access_scan or m not in SCAN_CALLS) and (inventory or m not in INVENTORY_CALLS)]


def permissions_for(operation: Operation) -> list[str]:
    return sorted({p for m in CALLS[operation] for p in METHODS[m].permissions})


def permission_of(method: str) -> str:
    known = METHODS.get(method)
    return " and ".join(known.permissions) if known else f"the permission of {method}"

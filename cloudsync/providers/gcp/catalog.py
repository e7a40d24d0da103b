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
    """Secret Manager's per-project request quotas (checked: 600 / 600 / 90,000 per minute), and
    the read quotas of Resource Manager and IAM that the access scan's few calls count against."""

    READ = "read"
    WRITE = "write"
    ACCESS = "access"
    IAM_READ = "iam-read"


@dataclass(frozen=True)
class Method:
    permission: str
    quota: Quota
    why: str


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
                                 "find enabled versions beyond keep_versions"),
    "DisableSecretVersion": Method("secretmanager.versions.disable", Quota.WRITE,
                                   "disable versions beyond keep_versions (never destroyed)"),
    "SetIamPolicy": Method("secretmanager.secrets.setIamPolicy", Quota.WRITE,
                           "grant and revoke roles/secretmanager.secretAccessor"),
    # The access scan: grants at broader scopes than the secret (see access.py).
    "Projects.GetIamPolicy": Method("resourcemanager.projects.getIamPolicy", Quota.IAM_READ,
                                    "who can read every secret through the project's IAM policy"),
    "IAM.GetRole": Method("iam.roles.get", Quota.IAM_READ,
                          "whether a custom role (or a basic role) carries secretmanager.versions.access"),
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

CALLS: Mapping[Operation, Sequence[str]] = {
    Operation.PLAN_METADATA: _READ_METADATA,
    Operation.PLAN: (*_READ_METADATA, "AccessSecretVersion"),
    Operation.APPLY: (*_READ_METADATA, "AccessSecretVersion", "GetSecret", "CreateSecret", "UpdateSecret",
                      "DeleteSecret", "AddSecretVersion", "ListSecretVersions", "DisableSecretVersion",
                      "SetIamPolicy"),
    # Granted in the project: the project's policy and its custom roles. The ancestors'
    # calls (ANCESTOR_CALLS) need permissions granted on the folders and the organization.
    Operation.ACCESS: ("Projects.GetIamPolicy", "IAM.GetRole"),
}

# The calls of access_scan.ancestors: true (a list of ancestors skips the two lookups).
ANCESTOR_CALLS: Sequence[str] = ("Projects.GetProject", "Folders.GetFolder", "Folders.GetIamPolicy",
                                 "Organizations.GetIamPolicy", "IAM.GetRole")


def permissions_for(operation: Operation) -> list[str]:
    """Every permission ``operation`` may need (for the access scan: with ancestors too)."""
    calls = (*CALLS[operation], *ANCESTOR_CALLS) if operation is Operation.ACCESS else CALLS[operation]
    return sorted({METHODS[m].permission for m in calls})


def permission_of(method: str) -> str:
    known = METHODS.get(method)
    return known.permission if known else f"the permission of {method}"

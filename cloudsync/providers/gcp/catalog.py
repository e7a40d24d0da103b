"""The one table of what cloudsync calls on Secret Manager, and why.

Each RPC maps to the IAM permission it needs and the quota it counts against; each
operation lists the RPCs its code paths make. Permission errors, ``cloudsync permissions``
and the rate limiter all read from here, so they cannot disagree with the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from cloudsync.providers.base import Operation


class Quota(StrEnum):
    """Secret Manager's per-project request quotas (checked: 600 / 600 / 90,000 per minute)."""

    READ = "read"
    WRITE = "write"
    ACCESS = "access"


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
}

_READ_METADATA = ("ListSecrets", "GetSecretVersion", "GetIamPolicy")

CALLS: Mapping[Operation, Sequence[str]] = {
    Operation.PLAN_METADATA: _READ_METADATA,
    Operation.PLAN: (*_READ_METADATA, "AccessSecretVersion"),
    Operation.APPLY: (*_READ_METADATA, "AccessSecretVersion", "GetSecret", "CreateSecret", "UpdateSecret",
                      "DeleteSecret", "AddSecretVersion", "ListSecretVersions", "DisableSecretVersion",
                      "SetIamPolicy"),
}


def permissions_for(operation: Operation) -> list[str]:
    return sorted({METHODS[m].permission for m in CALLS[operation]})


def permission_of(method: str) -> str:
    known = METHODS.get(method)
    return known.permission if known else f"the permission of {method}"

"""GCP's rules for the core: the ``provider: gcp`` target model, names, principal ids.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from cloudsync.config.fields import Strict
from cloudsync.providers.rules import ProviderRules, RemoteNames, TargetModel, id_field

# A project sits under at most 10 levels of folders and one organization.
MAX_ANCESTORS = 11


class GcpEndpoints(Strict):
    """Per-service endpoints, where one ``endpoint`` for every service does not fit."""

    resourcemanager: str | None = Field(
        None, description="host:port of Cloud Resource Manager (project, folder and organization IAM policies)")
    iam: str | None = Field(None, description="host:port of the IAM API (role definitions)")


AncestorName = Annotated[str, Field(pattern=r"^(folders|organizations)/[0-9]{1,20}$")]


class GcpAccessScan(Strict):
    """What the effective-access scan reads besides the secrets' and the project's IAM policies."""

    ancestors: bool | Annotated[list[AncestorName], Field(max_length=MAX_ANCESTORS)] = Field(
        False,
        description="also the IAM policies of the project's folders and organization: true finds them "
                    "(GetProject, GetFolder); a list (folders/N, organizations/N) names them")


class GcpTarget(TargetModel):
    """A GCP project (Secret Manager)."""

    provider: Literal["gcp"]
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="the project id, e.g. acme-prod")
    location: str | None = Field(None, description="regional secrets in this location")
    endpoint: str | None = Field(
        None, description="host:port of every service cloudsync calls for this target; insecure gRPC only for loopback")
    endpoints: GcpEndpoints | None = Field(None, description="per-service endpoints overriding `endpoint`")
    access_scan: bool | GcpAccessScan = Field(
        True, description="read who can read each secret through project (and folder, organization) IAM "
                          "policies; false where cloudsync's identity may not read IAM (readers then unknown)")
    replication: list[str] = Field(
        default_factory=list, description="user-managed replica locations; empty means automatic"
    )
    keep_versions: int = Field(5, ge=1, le=1000, description="enabled versions kept per secret")
    reads_per_minute: int | None = Field(
        default=None, ge=1, description="the project's Secret Manager read quota, when raised above 600/min")
    writes_per_minute: int | None = Field(
        default=None, ge=1, description="the project's Secret Manager write quota, when raised above 600/min")


_FOLD = str.maketrans({".": "_"})


class GcpRules(ProviderRules):
    """Secret Manager names have no ``/`` or ``.``: ``/`` becomes ``__``, ``.`` becomes ``_``."""

    kind = "gcp"
    config_model = GcpTarget
    principal_field = id_field("IAM member, e.g. serviceAccount:x@p.iam.gserviceaccount.com")
    remote_names = RemoteNames(re.compile(r"[A-Za-z0-9_-]{1,255}"), "letters, digits, '_' and '-' (at most 255)")

    def remote_name(self, logical: str) -> str:
        return logical.replace("/", "__").translate(_FOLD)

    def logical_name(self, remote: str) -> str:
        return remote.replace("__", "/")


RULES = GcpRules()

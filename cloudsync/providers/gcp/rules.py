"""GCP's rules for the core: the ``provider: gcp`` target model, names, principal ids.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from cloudsync.config.booleans import Flag, bool_tag, no_coerced_bool
from cloudsync.config.fields import Strict
from cloudsync.providers.base import is_loopback
from cloudsync.providers.rules import EndpointRefused, ProviderRules, RemoteNames, TargetModel, id_field

# A project sits under at most 10 levels of folders and one organization.
MAX_ANCESTORS = 11


class GcpEndpoints(Strict):
    """Per-service endpoints, where one ``endpoint`` for every service does not fit."""

    resourcemanager: str | None = Field(
        None, description="host:port of Cloud Resource Manager (project, folder and organization IAM policies)")
    iam: str | None = Field(None, description="host:port of the IAM API (role definitions)")
    cloudasset: str | None = Field(
        None, description="host:port of Cloud Asset Inventory (every secret's IAM policy and versions, in bulk)")


AncestorName = Annotated[str, Field(pattern=r"^(folders|organizations)/[0-9]{1,20}$")]


class GcpAccessScan(Strict):
    """What the effective-access scan reads besides the secrets' and the project's IAM policies."""

    ancestors: Annotated[Annotated[bool, Tag("bool")]
                         | Annotated[list[AncestorName], Field(max_length=MAX_ANCESTORS), Tag("other")],
                         Discriminator(bool_tag), no_coerced_bool(" or a list of folders/N, organizations/N")] = Field(
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
    access_scan: Annotated[Annotated[bool, Tag("bool")] | Annotated[GcpAccessScan, Tag("other")],
                           Discriminator(bool_tag), no_coerced_bool(" or {ancestors: ...}")] = Field(
        True, description="read who can read each secret through project (and folder, organization) IAM "
                          "policies; false where cloudsync's identity may not read IAM (readers then unknown)")
    replication: list[str] = Field(
        default_factory=list, description="user-managed replica locations; empty means automatic"
    )
    inventory: Flag = Field(
        True, description="find out-of-band grants and versions through Cloud Asset Inventory in a few paged calls, "
                          "reading directly only what it flags; false reads every owned secret's IAM policy and "
                          "latest version directly (two calls per secret; see docs/providers/gcp.md)")
    inventory_lag_minutes: int = Field(
        30, ge=1, le=1440, description="how far Cloud Asset Inventory may lag: secrets created within this window "
                                       "are read directly")
    keep_versions: int = Field(5, ge=1, le=1000, description="enabled versions kept per secret")
    reads_per_minute: int | None = Field(
        default=None, ge=1, description="the project's Secret Manager read quota, when raised above 600/min")
    writes_per_minute: int | None = Field(
        default=None, ge=1, description="the project's Secret Manager write quota, when raised above 600/min")


PUBLIC_HOST = "secretmanager.googleapis.com"
_PLAINTEXT_SCHEMES = ("http://", "grpc://")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoint(endpoint: str) -> Endpoint:
    """``[scheme://]host[:port]``; plain text only for loopback hosts; EndpointRefused otherwise."""
    text = endpoint.strip()
    scheme = next((s for s in (*_PLAINTEXT_SCHEMES, "https://") if text.startswith(s)), "")
    rest = text[len(scheme):].rstrip("/")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not host or (port_text and not port_text.isdigit()):
        raise EndpointRefused(f"endpoint {endpoint!r} is not host:port",
                              "e.g. endpoint: 127.0.0.1:8085 (an emulator) or secretmanager.example.com:443")
    loopback = is_loopback(host)
    tls = scheme == "https://" or (not scheme and not loopback)
    if not tls and not loopback:
        raise EndpointRefused(
            f"endpoint {endpoint!r} asks for unencrypted gRPC to a non-loopback host",
            "plain-text gRPC is accepted only for 127.0.0.1/localhost emulators; use https://host:port")
    return Endpoint(host=host, port=int(port_text) if port_text else 443, tls=tls)


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

    def location(self, config: Any) -> str:
        host = config.endpoint or (f"secretmanager.{config.location}.rep.googleapis.com" if config.location
                                   else PUBLIC_HOST)
        return f"project {config.project} at {host}"

    def endpoints(self, config: Any) -> list[tuple[tuple[str, ...], str]]:
        settings: list[tuple[tuple[str, ...], str | None]] = [(("endpoint",), config.endpoint)]
        if config.endpoints is not None:
            settings += [(("endpoints", name), getattr(config.endpoints, name)) for name in ("resourcemanager", "iam")]
        return [(field, url) for field, url in settings if url]

    def check_endpoint(self, field: str, url: str) -> None:
        parse_endpoint(url)


RULES = GcpRules()

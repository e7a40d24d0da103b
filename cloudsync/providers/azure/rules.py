"""Azure's rules for the core: the ``provider: azure`` target model, names, principal ids,
and the length of a description Key Vault can store.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from cloudsync.config.booleans import Flag
from cloudsync.providers.quotas import AzureQuotas
from cloudsync.providers.rules import EndpointRefused, ProviderRules, RemoteNames, TargetModel, id_field

# cloudsync stores a description as the secret version's contentType, which Key Vault
# limits to 255 characters (the stack file allows 2,048, AWS's limit).
CONTENT_TYPE_MAX = 255


class AzureTarget(TargetModel):
    """An Azure Key Vault, with RBAC scope fields for per-secret readers."""

    provider: Literal["azure"]
    vault_url: str = Field(pattern=r"^https?://[^/]+/?$", description="the vault, e.g. https://acme-prod.vault.azure.net")
    subscription_id: str | None = Field(None, description="the vault's subscription (for per-secret readers through "
                                        "Azure RBAC, and the access scan)")
    resource_group: str | None = Field(None, description="the vault's resource group (for per-secret readers)")
    vault_name: str | None = Field(None, description="the vault's resource name (for per-secret readers)")
    tenant_id: str | None = Field(None, description="the Entra tenant to sign in to (default: the credential's)")
    arm_endpoint: str | None = Field(None, description="Resource Manager endpoint override, for every ARM call "
                                                       "(role assignments, role definitions, the vault resource)")
    authority_endpoint: str | None = Field(None, description="token authority override")
    access_scan: Flag = Field(True, description="read who can read each secret through the vault, its resource group, "
                                                "subscription, management groups or access policies; false: readers "
                                                "are reported incomplete")
    quotas: AzureQuotas = Field(default_factory=AzureQuotas,
                                description="the vault's transaction quota this target paces to, when it differs")


ENDPOINT_FIELDS = ("vault_url", "arm_endpoint", "authority_endpoint")


def check_https(url: str, field: str) -> str:
    """``url`` without its trailing slash, when it is https: Azure sends bearer tokens over TLS only."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise EndpointRefused(f"{field} {url!r} must be an https URL",
                              "Azure accepts bearer tokens over TLS only, even on loopback; "
                              "trust a private CA with REQUESTS_CA_BUNDLE")
    return url.rstrip("/")


_FOLD = str.maketrans({"_": "-", ".": "-"})


class AzureRules(ProviderRules):
    """Key Vault names are letters, digits and ``-``, case-insensitive: ``/`` becomes ``--``,
    ``_`` and ``.`` become ``-``."""

    kind = "azure"
    config_model = AzureTarget
    principal_field = id_field("Entra object id (lowercase)",
                               pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    remote_names = RemoteNames(re.compile(r"[0-9A-Za-z-]{1,127}"), "letters, digits and '-' (at most 127)",
                               case_insensitive=True)

    def remote_name(self, logical: str) -> str:
        return logical.replace("/", "--").translate(_FOLD)

    def logical_name(self, remote: str) -> str:
        return remote.replace("--", "/")

    def location(self, config: Any) -> str:
        return f"vault {config.vault_url}"

    def endpoints(self, config: Any) -> list[tuple[tuple[str, ...], str]]:
        return [((field,), url) for field in ENDPOINT_FIELDS if (url := getattr(config, field))]

    def check_endpoint(self, field: str, url: str) -> None:
        check_https(url, field)

    def check_description(self, description: str) -> str | None:
        if len(description) <= CONTENT_TYPE_MAX:
            return None
        return (f"the description has {len(description)} characters, but Key Vault keeps at most {CONTENT_TYPE_MAX} "
                "in a secret's contentType, where cloudsync stores it")


RULES = AzureRules()

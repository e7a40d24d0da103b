"""Azure's rules for the core: the ``provider: azure`` target model, names, principal ids,
and the length of a description Key Vault can store.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from cloudsync.providers.rules import ProviderRules, RemoteNames, TargetModel, id_field

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
    access_scan: bool = Field(True, description="read who can read each secret through the vault, its resource group, "
                                                "subscription, management groups or access policies; false: readers "
                                                "are reported incomplete")


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

    def check_description(self, description: str) -> str | None:
        if len(description) <= CONTENT_TYPE_MAX:
            return None
        return (f"the description has {len(description)} characters, but Key Vault keeps at most {CONTENT_TYPE_MAX} "
                "in a secret's contentType, where cloudsync stores it")


RULES = AzureRules()

"""The vault as an ARM resource (``Microsoft.KeyVault/vaults``): its permission model and access policies.

What *Vaults - Get / Update / Update Access Policy* say, as ``azure-mgmt-keyvault`` sends
them (api-version 2026-05-15): ``enableRbacAuthorization`` true means Azure RBAC decides
data-plane access and access policies are ignored; false (or absent: the service's default)
means the access policies decide. An access policy names a tenant, an object id, optionally
an application id (a compound identity: that principal only through that application), and
permissions per object kind. ``update_access_policy`` with ``add`` merges permissions into an
identity's entry, ``replace`` sets them, ``remove`` drops the entry; at most 1,024 entries.
The data plane of the fake does not enforce access policies: they matter only to what ARM
reports (the tests' identity is authorised by ``deny``/``allow_only`` as before).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.azure.vault import ApiError

SEGMENT = "/providers/microsoft.keyvault/vaults"
MAX_POLICIES = 1024
SECRET_PERMISSIONS = frozenset({"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"})


@dataclass
class AccessPolicy:
    tenant_id: str
    object_id: str
    secrets: list[str]
    application_id: str | None = None
    keys: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)

    def identity(self) -> tuple[str, str | None]:
        return self.object_id.lower(), (self.application_id or "").lower() or None

    def body(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"tenantId": self.tenant_id, "objectId": self.object_id,
                                 "permissions": {"keys": list(self.keys), "secrets": list(self.secrets),
                                                 "certificates": list(self.certificates), "storage": []}}
        if self.application_id:
            entry["applicationId"] = self.application_id
        return entry


def _policy(entry: Any) -> AccessPolicy:
    if not isinstance(entry, dict) or not entry.get("tenantId") or not entry.get("objectId"):
        raise ApiError(400, "BadRequest", "An access policy needs a tenantId and an objectId.")
    permissions = entry.get("permissions") if isinstance(entry.get("permissions"), dict) else {}
    secrets = [str(p) for p in permissions.get("secrets") or []]
    unknown = [p for p in secrets if p.lower() not in SECRET_PERMISSIONS]
    if unknown:
        raise ApiError(400, "BadRequest", f"Invalid secret permission(s): {', '.join(unknown)}.")
    return AccessPolicy(str(entry["tenantId"]), str(entry["objectId"]), secrets,
                        str(entry["applicationId"]) if entry.get("applicationId") else None,
                        [str(p) for p in permissions.get("keys") or []],
                        [str(p) for p in permissions.get("certificates") or []])


class VaultResource:
    """The fake's one vault, as Resource Manager shows it."""

    def __init__(self, subscription_id: str, resource_group: str, name: str, tenant_id: str) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.name = self.original_name = name
        self.tenant_id = tenant_id
        self.vault_uri = ""
        self.lock = threading.Lock()
        self.rbac: bool | None = True
        self.policies: list[AccessPolicy] = []

    def reset(self, vault_uri: str) -> None:
        with self.lock:
            self.vault_uri = vault_uri
            self.name = self.original_name  # a test may rename it to play a vault ARM does not know
            self.rbac = True
            self.policies = []

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.KeyVault/vaults/{self.name}")

    def check(self, path: str) -> None:
        """404 unless ``path`` (a vault id, maybe with a tail) names this vault."""
        base = path.lower().split("/accesspolicies/", 1)[0].rstrip("/")
        if base != self.id.lower():
            name = base.rsplit("/", 1)[-1]
            raise ApiError(404, "ResourceNotFound", f"The Resource 'Microsoft.KeyVault/vaults/{name}' under resource "
                           "group was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")

    def body(self) -> dict[str, Any]:
        with self.lock:
            props: dict[str, Any] = {
                "sku": {"family": "A", "name": "standard"}, "tenantId": self.tenant_id,
                "accessPolicies": [p.body() for p in self.policies], "vaultUri": self.vault_uri + "/",
                "enabledForDeployment": False, "enabledForDiskEncryption": False,
                "enabledForTemplateDeployment": False, "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
                "provisioningState": "Succeeded", "publicNetworkAccess": "Enabled"}
            if self.rbac is not None:  # absent when never set: the service's default (access policies)
                props["enableRbacAuthorization"] = self.rbac
        return {"id": self.id, "name": self.name, "type": "Microsoft.KeyVault/vaults", "location": "westeurope",
                "tags": {}, "properties": props}

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        policies = None
        if "accessPolicies" in props:
            policies = [_policy(entry) for entry in props.get("accessPolicies") or []]
            if len(policies) > MAX_POLICIES:
                raise ApiError(400, "BadRequest", f"A vault holds at most {MAX_POLICIES} access policies.")
        with self.lock:
            if "enableRbacAuthorization" in props:
                self.rbac = None if props["enableRbacAuthorization"] is None else bool(props["enableRbacAuthorization"])
            if policies is not None:
                self.policies = policies
        return self.body()

    def update_policies(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        given = [_policy(entry) for entry in props.get("accessPolicies") or []]
        kind = kind.lower()
        if kind not in ("add", "replace", "remove"):
            raise ApiError(400, "BadRequest", f"Invalid access policy update kind '{kind}'.")
        with self.lock:
            updated = [AccessPolicy(p.tenant_id, p.object_id, list(p.secrets), p.application_id, list(p.keys),
                                    list(p.certificates)) for p in self.policies]
            for policy in given:
                same = [p for p in updated if p.identity() == policy.identity()]
                if kind == "remove":
                    updated = [p for p in updated if p.identity() != policy.identity()]
                elif not same:
                    updated.append(policy)
                elif kind == "add":
                    for mine, theirs in ((same[0].secrets, policy.secrets), (same[0].keys, policy.keys),
                                         (same[0].certificates, policy.certificates)):
                        mine.extend(p for p in theirs if p not in mine)
                else:
                    same[0].secrets, same[0].keys, same[0].certificates = policy.secrets, policy.keys, \
                        policy.certificates
            if len(updated) > MAX_POLICIES:
                raise ApiError(400, "BadRequest", f"A vault holds at most {MAX_POLICIES} access policies.")
            self.policies = updated
            current = [p.body() for p in self.policies]
        return {"id": f"{self.id}/accessPolicies/{kind}", "name": kind,
                "type": "Microsoft.KeyVault/vaults/accessPolicies", "location": "westeurope",
                "properties": {"accessPolicies": current}}

    def add_policy(self, object_id: str, secrets: list[str], *, application_id: str | None = None) -> None:
        """Give ``object_id`` an access policy (as an operator would, outside cloudsync)."""
        entry: dict[str, Any] = {"tenantId": self.tenant_id, "objectId": object_id, "permissions": {"secrets": secrets}}
        if application_id:
            entry["applicationId"] = application_id
        self.update_policies("add", {"properties": {"accessPolicies": [entry]}})

"""The Azure RBAC permissions each cloudsync operation needs, from one table.

Key Vault in RBAC mode authorises data-plane calls by *dataActions*
(``Microsoft.KeyVault/vaults/secrets/...``); readers are role assignments, managed through
ARM with *actions* (``Microsoft.Authorization/roleAssignments/...``). The table maps each
REST call the adapter makes to the permission it needs; an operation needs the union of its
calls. ``cloudsync permissions --target T`` renders it, with custom role definitions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cloudsync.providers.base import Operation

SECRETS_USER_ROLE = "4633458b-17de-408a-b874-0445c86b69e6"  # Key Vault Secrets User (built-in)
_KV = "Microsoft.KeyVault/vaults/secrets/"
_RA = "Microsoft.Authorization/roleAssignments/"


@dataclass(frozen=True)
class Need:
    action: str
    kind: Literal["dataAction", "action"]
    scope: str  # where it must be granted
    why: str


# REST call (as named by connection.operation_of) -> the permission it needs.
NEEDS: dict[str, Need] = {
    "list_secrets": Need(_KV + "readMetadata/action", "dataAction", "vault", "list secrets with tags (no values)"),
    "list_secret_versions": Need(_KV + "readMetadata/action", "dataAction", "vault",
                                 "find the version cloudsync wrote when the list cannot tell"),
    "list_deleted_secrets": Need(_KV + "readMetadata/action", "dataAction", "vault",
                                 "find soft-deleted declared secrets"),
    "get_deleted_secret": Need(_KV + "readMetadata/action", "dataAction", "vault", "wait for a delete to finish"),
    "get_secret": Need(_KV + "getSecret/action", "dataAction", "vault",
                       "read the fingerprint key and `from` values"),
    "set_secret": Need(_KV + "setSecret/action", "dataAction", "vault", "create secrets and write new versions"),
    "update_secret": Need(_KV + "update/action", "dataAction", "vault", "change tags, description, expiry"),
    "delete_secret": Need(_KV + "delete", "dataAction", "vault", "soft-delete secrets no longer declared"),
    "recover_secret": Need(_KV + "recover/action", "dataAction", "vault", "restore soft-deleted declared secrets"),
    "purge_secret": Need(_KV + "purge/action", "dataAction", "vault",
                         "purge deleted secrets (only stacks using purge_on_delete)"),
    "list_role_assignments": Need(_RA + "read", "action", "vault",
                                  "read readers: assignments at, above and below the vault"),
    "create_role_assignment": Need(_RA + "write", "action", "vault",
                                   "grant Key Vault Secrets User at a secret's scope"),
    "delete_role_assignment": Need(_RA + "delete", "action", "vault",
                                   "revoke Key Vault Secrets User at a secret's scope"),
    "get_role_definition": Need("Microsoft.Authorization/roleDefinitions/read", "action", "vault",
                                "access scan: resolve the role of each assignment at and above the vault"),
    "get_vault": Need("Microsoft.KeyVault/vaults/read", "action", "vault",
                      "access scan: the vault's permission model and access policies"),
}

_METADATA_CALLS = ("list_secrets", "list_secret_versions", "list_deleted_secrets", "list_role_assignments")
# Every operation reads the target and scans who can read (plan, drift and `cloudsync
# access` alike); the scan's own calls are left out for a target with `access_scan: false`.
SCAN_CALLS = ("get_role_definition", "get_vault")
CALLS: dict[Operation, tuple[str, ...]] = {
    Operation.PLAN_METADATA: (*_METADATA_CALLS, *SCAN_CALLS),
    Operation.PLAN: (*_METADATA_CALLS, "get_secret", *SCAN_CALLS),
    Operation.APPLY: tuple(NEEDS),
}

TITLES = {
    Operation.PLAN_METADATA: "plan --metadata-only, drift, access",
    Operation.PLAN: "plan",
    Operation.APPLY: "apply",
}

# Lets an identity grant and revoke only Key Vault Secrets User (Azure ABAC condition on
# Microsoft.Authorization/roleAssignments write/delete).
ASSIGNMENT_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{SECRETS_USER_ROLE}}})) AND "
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{SECRETS_USER_ROLE}}}))"
)


def needs(operation: Operation, *, access_scan: bool = True) -> list[Need]:
    """The distinct permissions of one operation, in table order."""
    seen: dict[str, Need] = {}
    for call in CALLS[operation]:
        if access_scan or call not in SCAN_CALLS:
            need = NEEDS[call]
            seen.setdefault(need.action, need)
    return list(seen.values())


def permissions(*, access_scan: bool = True) -> Mapping[Operation, Sequence[str]]:
    return {op: [need.action for need in needs(op, access_scan=access_scan)] for op in CALLS}


def role_definition(operation: Operation, stack: str, scope: str, *, access_scan: bool = True) -> dict[str, object]:
    """A custom role definition (``az role definition create --role-definition``) for one operation."""
    chosen = needs(operation, access_scan=access_scan)
    return {
        "Name": f"cloudsync {stack} {operation.value}",
        "Description": f"cloudsync stack {stack}: {TITLES[operation]} on one Key Vault",
        "Actions": [n.action for n in chosen if n.kind == "action"],
        "DataActions": [n.action for n in chosen if n.kind == "dataAction"],
        "NotActions": [],
        "NotDataActions": [],
        "AssignableScopes": [scope],
    }


def render(vault_url: str, vault_scope: str | None, stack: str, *, access_scan: bool = True) -> str:
    """Human-readable least-privilege permissions of a target, per operation."""
    scope = vault_scope or "/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/<vault>"
    lines = [f"Azure Key Vault {vault_url} (RBAC permission model)", f"scope: {scope}", ""]
    if vault_scope is None:
        lines += ["note: set subscription_id, resource_group (and vault_name) on the target to manage readers;",
                  "      without them cloudsync needs no Microsoft.Authorization permission.", ""]
    for operation in CALLS:
        lines.append(f"{TITLES[operation]} ({operation.value}):")
        for need in needs(operation, access_scan=access_scan):
            lines.append(f"  {need.kind:<10}  {need.action:<55}  {need.why}")
        lines.append("")
    lines.append("Custom roles, one per operation (assign each at the vault scope):")
    for operation in CALLS:
        lines.append(json.dumps(role_definition(operation, stack, scope, access_scan=access_scan), indent=2))
    lines += ["", "The apply role's roleAssignments/write and /delete can grant any role; limit them to Key Vault",
              "Secrets User with this condition on the apply identity's role assignment (conditionVersion 2.0):",
              f"  {ASSIGNMENT_CONDITION}",
              "Readers get the built-in Key Vault Secrets User role "
              f"({SECRETS_USER_ROLE}) at <vault scope>/secrets/<name>.",
              "roleDefinitions/read and vaults/read serve the access scan (who can read, at every scope): without",
              "them plan, drift and apply still work and report those readers as unknown; a target with",
              "`access_scan: false` makes no such call and needs neither."]
    return "\n".join(lines)

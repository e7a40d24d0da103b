"""The in-memory ARM role definitions behind the fake (``Microsoft.Authorization``, 2022-04-01).

Built-in roles carry the ids and permissions Azure publishes (checked against the built-in
roles reference; Owner, Contributor and Reader abridged to what matters here: control-plane
actions and no data actions). A test adds custom roles through the real client
(``role_definitions.create_or_update``) or :meth:`RoleDefinitions.add`.

Semantics follow *Role Definitions - Get / List / Create Or Update*: a definition is found
by its GUID under any scope (built-ins are assignable at ``/``; the fake does not check a
custom role's ``assignableScopes`` on a get); ``list`` takes ``$filter=roleName eq '...'``
or ``type eq 'BuiltInRole'|'CustomRole'``; a custom role's name must be a GUID.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.azure.rbac import _is_guid as is_guid
from tests.fakes.azure.vault import ApiError

SEGMENT = "/providers/microsoft.authorization/roledefinitions"

_KV_CONTROL = ("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/deployments/*",
               "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Support/*",
               "Microsoft.KeyVault/checkNameAvailability/read", "Microsoft.KeyVault/deletedVaults/read",
               "Microsoft.KeyVault/locations/*/read", "Microsoft.KeyVault/vaults/*/read",
               "Microsoft.KeyVault/operations/read")
_FILTER = re.compile(r"^\s*(roleName|type)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


@dataclass
class Definition:
    guid: str
    role_name: str
    description: str
    built_in: bool
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    assignable_scopes: tuple[str, ...] = ("/",)
    extra_permissions: list[dict[str, list[str]]] = field(default_factory=list)  # further permission blocks

    def body(self, scope: str) -> dict[str, Any]:
        prefix = scope.rstrip("/")
        permissions = [{"actions": list(self.actions), "notActions": list(self.not_actions),
                        "dataActions": list(self.data_actions), "notDataActions": list(self.not_data_actions)},
                       *self.extra_permissions]
        return {
            "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{self.guid}",
            "name": self.guid, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": self.role_name, "type": "BuiltInRole" if self.built_in else "CustomRole",
                           "description": self.description, "assignableScopes": list(self.assignable_scopes),
                           "permissions": permissions, "createdOn": "2020-05-19T17:52:46.2349235Z",
                           "updatedOn": "2021-11-11T20:14:30.9840000Z", "createdBy": None, "updatedBy": None},
        }


BUILT_IN = (
    Definition("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
               "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
               True, actions=("*",)),
    Definition("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
               "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
               True, actions=("*",), not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                                                  "Microsoft.Authorization/elevateAccess/Action")),
    Definition("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View all resources, but does not allow you to make "
               "any changes.", True, actions=("*/read",)),
    Definition("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator",
               "Perform all data plane operations on a key vault and all objects in it.", True, actions=_KV_CONTROL,
               data_actions=("Microsoft.KeyVault/vaults/*",)),
    Definition("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer",
               "Perform any action on the secrets of a key vault, except manage permissions.", True,
               actions=_KV_CONTROL, data_actions=("Microsoft.KeyVault/vaults/secrets/*",)),
    Definition("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User", "Read secret contents.", True,
               data_actions=("Microsoft.KeyVault/vaults/secrets/getSecret/action",
                             "Microsoft.KeyVault/vaults/secrets/readMetadata/action")),
    Definition("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader",
               "Read metadata of key vaults and its certificates, keys, and secrets.", True, actions=_KV_CONTROL,
               data_actions=("Microsoft.KeyVault/vaults/*/read",
                             "Microsoft.KeyVault/vaults/secrets/readMetadata/action")),
    Definition("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", "Read certificate contents.",
               True, data_actions=("Microsoft.KeyVault/vaults/certificates/read",
                                   "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                   "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
                                   "Microsoft.KeyVault/vaults/keys/read")),
)


class RoleDefinitions:
    """Every role definition the fake knows: the built-ins and the custom roles tests add."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.custom: dict[str, Definition] = {}

    def reset(self) -> None:
        with self.lock:
            self.custom.clear()

    def add(self, definition: Definition) -> None:
        with self.lock:
            self.custom[definition.guid.lower()] = definition

    def _find(self, guid: str) -> Definition | None:
        guid = guid.lower()
        for definition in BUILT_IN:
            if definition.guid == guid:
                return definition
        with self.lock:
            return self.custom.get(guid)

    def get(self, scope: str, guid: str) -> dict[str, Any]:
        found = self._find(guid)
        if found is None:
            raise ApiError(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' "
                           "does not exist.")
        return found.body(scope)

    def list(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        with self.lock:
            every = [*BUILT_IN, *sorted(self.custom.values(), key=lambda d: d.guid)]
        if filter_text:
            match = _FILTER.match(filter_text)
            if match is None:
                raise ApiError(400, "UnsupportedQuery", f"The filter '{filter_text}' is not supported.")
            key, value = match[1].lower(), match[2]
            if key == "rolename":
                every = [d for d in every if d.role_name.lower() == value.lower()]
            else:
                every = [d for d in every if ("BuiltInRole" if d.built_in else "CustomRole") == value]
        return [d.body(scope) for d in every]

    def create(self, scope: str, guid: str, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties") or {}
        if not is_guid(guid):
            raise ApiError(400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid.")
        existing = self._find(guid)
        if existing is not None and existing.built_in:
            raise ApiError(400, "RoleDefinitionUpdateNotPermitted", "Built-in role definitions cannot be changed.")
        blocks = [p for p in props.get("permissions") or [] if isinstance(p, dict)]
        if not blocks or not props.get("roleName") or not props.get("assignableScopes"):
            raise ApiError(400, "InvalidRoleDefinition", "A role definition needs a roleName, permissions and "
                           "assignableScopes.")

        def strings(block: dict[str, Any], key: str) -> tuple[str, ...]:
            return tuple(str(item) for item in block.get(key) or [])

        first, *rest = blocks
        definition = Definition(
            guid.lower(), str(props["roleName"]), str(props.get("description") or ""), False,
            actions=strings(first, "actions"), not_actions=strings(first, "notActions"),
            data_actions=strings(first, "dataActions"), not_data_actions=strings(first, "notDataActions"),
            assignable_scopes=strings(props, "assignableScopes"),
            extra_permissions=[{k: list(strings(b, k)) for k in ("actions", "notActions", "dataActions",
                                                                  "notDataActions")} for b in rest])
        self.add(definition)
        return definition.body(scope)

"""The in-memory ARM role assignments behind the fake (``Microsoft.Authorization``, 2022-04-01).

Semantics follow the REST reference of *Role Assignments - List For Scope / Create / Delete*:

- listing at a scope without ``$filter`` returns assignments at, above and below the scope;
  "above" includes the management groups the subscription sits in (:attr:`RoleAssignments.ancestors`);
  ``$filter=atScope()`` only those at or above it; ``$filter=principalId eq '{id}'`` (or
  ``assignedTo('{id}')``) those of one principal at, above or below it;
- scopes compare case-insensitively; an assignment's name must be a GUID;
- creating an assignment that exists under the same name with the same properties is
  idempotent (200); another name for the same scope, role and principal is
  ``409 RoleAssignmentExists``; the same name with other properties is
  ``409 RoleAssignmentUpdateNotPermitted``;
- deleting answers 200 with the deleted assignment, or 204 when there is none.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.fakes.azure.vault import ApiError

PROVIDER_SEGMENT = "/providers/microsoft.authorization/roleassignments"
_PRINCIPAL_FILTER = re.compile(r"^\s*(?:principalId\s+eq\s+'([^']+)'|assignedTo\('([^']+)'\))\s*$", re.IGNORECASE)


@dataclass
class Assignment:
    scope: str
    name: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    created: str
    condition: str | None = None

    @property
    def id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"

    def body(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "scope": self.scope, "roleDefinitionId": self.role_definition_id, "principalId": self.principal_id,
            "principalType": self.principal_type, "createdOn": self.created, "updatedOn": self.created,
            "createdBy": None, "updatedBy": None, "delegatedManagedIdentityResourceId": None, "description": None,
            "condition": self.condition, "conditionVersion": "2.0" if self.condition else None,
        }
        return {"id": self.id, "name": self.name, "type": "Microsoft.Authorization/roleAssignments",
                "properties": props}


def normalize_scope(scope: str) -> str:
    return "/" + "/".join(part for part in scope.split("/") if part)


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _guid_tail(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


class RoleAssignments:
    """Every role assignment the fake knows, across scopes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[str, Assignment] = {}  # lowercased id -> assignment
        self.known_principals: set[str] | None = None  # None: any GUID is a principal
        # Management-group scopes above the subscriptions (root first): inherited, though no prefix.
        self.ancestors: tuple[str, ...] = ()

    def reset(self) -> None:
        with self.lock:
            self.by_id.clear()
            self.known_principals = None

    def create(self, scope: str, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        scope = normalize_scope(scope)
        props = body.get("properties") or {}
        role = props.get("roleDefinitionId")
        principal = props.get("principalId")
        if not _is_guid(name):
            raise ApiError(400, "InvalidRoleAssignmentId",
                           f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
        if not isinstance(role, str) or not _is_guid(_guid_tail(role)):
            raise ApiError(400, "InvalidRoleDefinitionId", "The role definition ID is not valid.")
        if not isinstance(principal, str) or not _is_guid(principal):
            raise ApiError(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.")
        with self.lock:
            if self.known_principals is not None and principal.lower() not in self.known_principals:
                raise ApiError(400, "PrincipalNotFound",
                               f"Principal {principal.replace('-', '')} does not exist in the directory.")
            wanted = Assignment(scope=scope, name=name.lower(), role_definition_id=role,
                                principal_id=principal.lower(), principal_type=props.get("principalType") or "User",
                                created=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                                condition=props.get("condition"))
            same_name = self.by_id.get(wanted.id.lower())
            if same_name is not None:
                if (_guid_tail(same_name.role_definition_id), same_name.principal_id) == (
                        _guid_tail(role), wanted.principal_id):
                    return 200, same_name.body()
                raise ApiError(409, "RoleAssignmentUpdateNotPermitted",
                               "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
            for other in self.by_id.values():
                if (other.scope.lower(), _guid_tail(other.role_definition_id), other.principal_id) == (
                        scope.lower(), _guid_tail(role), wanted.principal_id):
                    raise ApiError(409, "RoleAssignmentExists",
                                   f"The role assignment already exists. The ID of the existing role assignment is "
                                   f"{other.name.replace('-', '')}.")
            self.by_id[wanted.id.lower()] = wanted
            return 201, wanted.body()

    def get(self, scope: str, name: str) -> dict[str, Any]:
        key = f"{normalize_scope(scope)}/providers/Microsoft.Authorization/roleAssignments/{name}".lower()
        with self.lock:
            found = self.by_id.get(key)
        if found is None:
            raise ApiError(404, "RoleAssignmentNotFound", "The role assignment '" + name + "' is not found.")
        return found.body()

    def delete(self, scope: str, name: str) -> dict[str, Any] | None:
        key = f"{normalize_scope(scope)}/providers/Microsoft.Authorization/roleAssignments/{name}".lower()
        with self.lock:
            found = self.by_id.pop(key, None)
        return found.body() if found else None

    def list(self, scope: str, filter_text: str | None) -> list[dict[str, Any]]:
        scope_l = normalize_scope(scope).lower()
        principal = None
        at_scope = False
        if filter_text:
            if filter_text.strip() == "atScope()":
                at_scope = True
            else:
                match = _PRINCIPAL_FILTER.match(filter_text)
                if match is None:
                    raise ApiError(400, "UnsupportedQuery", f"The filter '{filter_text}' is not supported.")
                principal = (match.group(1) or match.group(2)).lower()
        with self.lock:
            found = []
            for assignment in sorted(self.by_id.values(), key=lambda a: a.id.lower()):
                other = assignment.scope.lower()
                above_or_at = scope_l == other or scope_l.startswith(other.rstrip("/") + "/") or other == "/" or (
                    scope_l.startswith("/subscriptions/") and other in (a.lower() for a in self.ancestors))
                below = other.startswith(scope_l + "/")
                if not (above_or_at or (below and not at_scope)):
                    continue
                if principal is not None and assignment.principal_id != principal:
                    continue
                found.append(assignment.body())
        return found

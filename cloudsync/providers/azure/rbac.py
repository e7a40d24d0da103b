"""Per-secret readers as role assignments of *Key Vault Secrets User* at the secret's scope.

Reading costs one paginated call for the whole vault: *Role Assignments - List For Scope*
at the vault's scope without ``$filter`` returns assignments at, above and below that scope
(``$filter=atScope()`` would drop those below it, i.e. the per-secret ones). Assignments at
``<vault>/secrets/<name>`` are attributed to that secret; assignments at the vault or above
apply to every secret and are not per-secret readers (docs/providers/azure.md).

Assignment names are deterministic (uuid5 of scope, role and principal), so a retried
create is idempotent; an equal assignment under another name (``RoleAssignmentExists``)
counts as granted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from cloudsync.providers.azure.client import WRITE_RETRIES, RbacScope
from cloudsync.providers.azure.errors import azure_call, service_code
from cloudsync.providers.azure.permissions import SECRETS_USER_ROLE
from cloudsync.providers.base import ProviderError

# Built-in roles worth naming in reports; others show as their definition id.
ROLE_NAMES = {
    SECRETS_USER_ROLE: "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "21090545-7ca7-4776-b22c-e363652d74d2": "Key Vault Reader",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
}


@dataclass(frozen=True)
class Grant:
    """One role assignment at one secret's scope."""

    assignment_id: str
    principal_id: str
    role: str  # role definition GUID, lowercase

    @property
    def is_reader(self) -> bool:
        return self.role == SECRETS_USER_ROLE

    def describe(self) -> str:
        return f"{ROLE_NAMES.get(self.role, 'role ' + self.role)} for {self.principal_id}"


def _role_guid(role_definition_id: str | None) -> str:
    return (role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def assignment_name(scope: str, principal_id: str) -> str:
    """The deterministic name of cloudsync's assignment of a reader at a scope."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudsync:{scope.lower()}:{SECRETS_USER_ROLE}:{principal_id.lower()}"))


class Readers:
    """Reads and changes per-secret role assignments of one vault."""

    def __init__(self, client: AuthorizationManagementClient, scope: RbacScope) -> None:
        self.client = client
        self.scope = scope

    def grants_by_secret(self) -> dict[str, list[Grant]]:
        """Every assignment at a secret's scope in the vault, by casefolded secret name."""
        prefix = (self.scope.vault_scope + "/secrets/").lower()
        found: dict[str, list[Grant]] = defaultdict(list)
        with azure_call("list_role_assignments", "at the vault scope"):
            for assignment in self.client.role_assignments.list_for_scope(self.scope.vault_scope):
                scope = (assignment.scope or "").lower()
                if not scope.startswith(prefix) or "/" in scope[len(prefix):]:
                    continue  # the vault itself, above it, or something other than a secret
                found[scope[len(prefix):]].append(Grant(assignment.id or "", (assignment.principal_id or "").lower(),
                                                        _role_guid(assignment.role_definition_id)))
        return found

    def grant(self, secret: str, principals: Iterable[str]) -> None:
        scope = self.scope.secret(secret)
        role_id = (f"/subscriptions/{self.scope.subscription_id}/providers/Microsoft.Authorization/"
                   f"roleDefinitions/{SECRETS_USER_ROLE}")
        for principal in sorted(principals):
            check_principal(principal)
            params = RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=principal)
            try:
                with azure_call("create_role_assignment", f"for {principal} on {secret}"):
                    try:
                        self.client.role_assignments.create(scope, assignment_name(scope, principal), params,
                                                            **WRITE_RETRIES)
                    except HttpResponseError as exc:
                        if service_code(exc)[0] != "RoleAssignmentExists":
                            raise
            except ProviderError as exc:
                if exc.code == "PrincipalNotFound":
                    # A principal created moments ago may not have replicated to ARM yet.
                    raise ProviderError(exc.message, code=exc.code, transient=True, retry_after=5.0,
                                        hint="check the principal's object id; a new identity can take a "
                                             "minute to become assignable") from None
                raise

    def revoke(self, secret: str, grants: Iterable[Grant]) -> None:
        for grant in grants:
            with azure_call("delete_role_assignment", f"for {grant.principal_id} on {secret}"):
                self.client.role_assignments.delete_by_id(grant.assignment_id, **WRITE_RETRIES)


def check_principal(principal: str) -> None:
    try:
        canonical = str(uuid.UUID(principal))
    except ValueError:
        canonical = ""
    if canonical != principal:
        raise ProviderError(f"principal id {principal!r} is not an Entra object id in canonical form",
                            code="InvalidPrincipalId",
                            hint="use the object id as a lowercase GUID, e.g. 00000000-0000-0000-0000-000000000001")

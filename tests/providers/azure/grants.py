"""An operator granting access outside cloudsync, with the real ARM clients: role assignments at
any scope, custom roles, and the vault's access policies (``azure-mgmt-authorization``,
``azure-mgmt-keyvault``), against the fake."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from azure.identity import DefaultAzureCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleAssignmentCreateParameters, RoleDefinition
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.keyvault.models import (
    AccessPolicyEntry,
    Permissions,
    VaultAccessPolicyParameters,
    VaultAccessPolicyProperties,
    VaultPatchParameters,
    VaultPatchProperties,
)

from tests.fakes.azure import AzureFake

SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
# An ABAC condition limiting reads to secrets whose name starts with "payments".
CONDITION = ("((!(ActionMatches{'Microsoft.KeyVault/vaults/secrets/getSecret/action'})) OR "
             "(@Resource[Microsoft.KeyVault/vaults/secrets:name] StringStartsWith 'payments'))")


class Grants:
    """The real ARM clients, used as another operator would."""

    def __init__(self, fake: AzureFake) -> None:
        self.fake = fake
        self.credential = DefaultAzureCredential()
        options = {"base_url": fake.url, "credential_scopes": [f"{fake.url}/.default"]}
        self.authorization = AuthorizationManagementClient(self.credential, fake.subscription_id, **options)
        self.vaults = KeyVaultManagementClient(self.credential, fake.subscription_id, **options)

    def close(self) -> None:
        self.authorization.close()
        self.vaults.close()
        self.credential.close()

    def assign(self, scope: str, principal: str, role: str, *, condition: str | None = None,
               principal_type: str | None = None) -> str:
        """Assign ``role`` (a GUID) to ``principal`` at ``scope``; the assignment's id."""
        role_id = f"/subscriptions/{self.fake.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        created = self.authorization.role_assignments.create(
            scope, str(uuid.uuid4()),
            RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=principal,
                                           principal_type=principal_type, condition=condition,
                                           condition_version="2.0" if condition else None))
        return str(created.id)

    def remove(self, assignment_id: str) -> None:
        self.authorization.role_assignments.delete_by_id(assignment_id)

    def custom_role(self, name: str, data_actions: Sequence[str], not_data_actions: Sequence[str] = ()) -> str:
        """Create a custom role assignable in the subscription; its GUID."""
        guid = str(uuid.uuid4())
        scope = self.fake.subscription_scope
        self.authorization.role_definitions.create_or_update(scope, guid, RoleDefinition(
            role_name=name, description=f"test role {name}", role_type="CustomRole", assignable_scopes=[scope],
            permissions=[Permission(actions=[], not_actions=[], data_actions=list(data_actions),
                                    not_data_actions=list(not_data_actions))]))
        return guid

    def policy(self, object_id: str, secrets: Sequence[str], *, application_id: str | None = None,
               kind: str = "add") -> None:
        """Add (or replace, remove) ``object_id``'s access policy on the vault."""
        entry = AccessPolicyEntry(tenant_id=self.fake.tenant_id, object_id=object_id, application_id=application_id,
                                  permissions=Permissions(secrets=list(secrets)))
        self.vaults.vaults.update_access_policy(
            self.fake.resource_group, self.fake.vault_name, kind,
            VaultAccessPolicyParameters(properties=VaultAccessPolicyProperties(access_policies=[entry])))

    def permission_model(self, *, rbac: bool) -> None:
        """Switch the vault between Azure RBAC and access policies (``enableRbacAuthorization``)."""
        self.vaults.vaults.update(self.fake.resource_group, self.fake.vault_name, VaultPatchParameters(
            properties=VaultPatchProperties(enable_rbac_authorization=rbac)))

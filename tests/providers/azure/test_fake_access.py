"""The fake's ARM side for the access scan, driven by the real ``azure-mgmt-authorization`` and
``azure-mgmt-keyvault`` clients: role definitions, role assignments inherited from above the
vault, and the vault resource with both permission models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.fakes.azure import AzureFake
from tests.providers.azure.grants import (
    ADMINISTRATOR,
    CONDITION,
    CONTRIBUTOR,
    SECRETS_OFFICER,
    SECRETS_USER,
    Grants,
)
from tests.providers.azure.stacks import API, AUDITOR, WORKER


@pytest.fixture
def grants(azure: AzureFake) -> Iterator[Grants]:
    operator = Grants(azure)
    yield operator
    operator.close()


def test_built_in_roles_carry_their_published_ids_and_data_actions(azure: AzureFake, grants: Grants) -> None:
    roles = grants.authorization.role_definitions
    user = roles.get(azure.vault_scope, SECRETS_USER)
    assert (user.role_name, user.role_type) == ("Key Vault Secrets User", "BuiltInRole")
    assert user.permissions[0].data_actions == ["Microsoft.KeyVault/vaults/secrets/getSecret/action",
                                                "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
    assert user.id == f"{azure.vault_scope}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"
    # get_by_id takes the id an assignment carries (subscription form) and answers the same role.
    by_id = roles.get_by_id(f"/subscriptions/{azure.subscription_id}/providers/Microsoft.Authorization/"
                            f"roleDefinitions/{SECRETS_OFFICER}")
    assert (by_id.role_name, by_id.permissions[0].data_actions) == ("Key Vault Secrets Officer",
                                                                    ["Microsoft.KeyVault/vaults/secrets/*"])
    assert roles.get("/", ADMINISTRATOR).permissions[0].data_actions == ["Microsoft.KeyVault/vaults/*"]
    contributor = roles.get(azure.subscription_scope, CONTRIBUTOR)
    assert (contributor.permissions[0].actions, contributor.permissions[0].data_actions) == (["*"], [])
    listed = list(roles.list(azure.subscription_scope, filter="roleName eq 'Key Vault Secrets User'"))
    assert [r.name for r in listed] == [SECRETS_USER]
    assert azure.calls["arm.role_definitions.get"] == 4


def test_custom_roles_are_created_and_read_back(azure: AzureFake, grants: Grants) -> None:
    guid = grants.custom_role("secret readers", ["Microsoft.KeyVault/vaults/secrets/*"],
                              ["Microsoft.KeyVault/vaults/secrets/getSecret/action"])
    found = grants.authorization.role_definitions.get(azure.vault_scope, guid)
    assert (found.role_name, found.role_type) == ("secret readers", "CustomRole")
    assert found.permissions[0].not_data_actions == ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
    custom = list(grants.authorization.role_definitions.list(azure.subscription_scope, filter="type eq 'CustomRole'"))
    assert [r.name for r in custom] == [guid]


def test_an_unknown_role_is_404_and_a_denied_read_is_403(azure: AzureFake, grants: Grants) -> None:
    with pytest.raises(ResourceNotFoundError):
        grants.authorization.role_definitions.get(azure.vault_scope, "11111111-1111-4111-8111-111111111111")
    azure.deny("Microsoft.Authorization/roleDefinitions/read")
    with pytest.raises(HttpResponseError) as info:
        grants.authorization.role_definitions.get(azure.vault_scope, SECRETS_USER)
    assert info.value.status_code == 403 and info.value.error is not None
    assert info.value.error.code == "AuthorizationFailed"
    assert "Microsoft.Authorization/roleDefinitions/read" in str(info.value.error.message)


def test_listing_at_the_vault_returns_assignments_inherited_from_every_scope_above(azure: AzureFake,
                                                                                   grants: Grants) -> None:
    scopes = {"secret": azure.secret_scope("db"), "vault": azure.vault_scope, "group": azure.resource_group_scope,
              "subscription": azure.subscription_scope,
              "workloads": azure.management_group_scope("mg-workloads"),
              "root": azure.management_group_scope(azure.tenant_id)}
    for scope in scopes.values():
        grants.assign(scope, API, SECRETS_USER)
    # A management group the subscription is not in, and another resource group: not above the vault.
    grants.assign(azure.management_group_scope("mg-elsewhere"), API, SECRETS_USER)
    grants.assign(f"/subscriptions/{azure.subscription_id}/resourceGroups/rg-other", API, SECRETS_USER)
    assignments = grants.authorization.role_assignments
    every = {a.scope for a in assignments.list_for_scope(azure.vault_scope)}
    assert every == set(scopes.values())
    at_or_above = {a.scope for a in assignments.list_for_scope(azure.vault_scope, filter="atScope()")}
    assert at_or_above == set(scopes.values()) - {scopes["secret"]}


def test_an_assignment_keeps_its_condition_and_principal_type(azure: AzureFake, grants: Grants) -> None:
    grants.assign(azure.vault_scope, WORKER, SECRETS_USER, condition=CONDITION, principal_type="Group")
    (found,) = grants.authorization.role_assignments.list_for_scope(azure.vault_scope)
    assert (found.condition, found.condition_version, found.principal_type) == (CONDITION, "2.0", "Group")


def test_the_vault_resource_shows_its_permission_model_and_access_policies(azure: AzureFake, grants: Grants) -> None:
    vaults = grants.vaults.vaults
    vault = vaults.get(azure.resource_group, azure.vault_name)
    assert (vault.id, vault.properties.enable_rbac_authorization) == (azure.vault_scope, True)
    assert vault.properties.vault_uri == azure.url + "/"
    grants.policy(API, ["get", "list"])
    grants.policy(API, ["set"])  # add merges into the identity's entry
    grants.policy(AUDITOR, ["list"], application_id=WORKER)
    grants.permission_model(rbac=False)
    vault = vaults.get(azure.resource_group, azure.vault_name)
    assert vault.properties.enable_rbac_authorization is False
    policies = {(p.object_id, p.application_id): p.permissions.secrets for p in vault.properties.access_policies}
    assert policies == {(API, None): ["get", "list", "set"], (AUDITOR, WORKER): ["list"]}
    grants.policy(API, [], kind="remove")
    vault = vaults.get(azure.resource_group, azure.vault_name)
    assert [p.object_id for p in vault.properties.access_policies] == [AUDITOR]
    assert azure.calls["arm.vaults.get"] == 3


def test_an_unset_permission_model_is_absent_and_bad_policies_are_refused(azure: AzureFake, grants: Grants) -> None:
    azure.vault_resource.rbac = None
    vault = grants.vaults.vaults.get(azure.resource_group, azure.vault_name)
    assert vault.properties.enable_rbac_authorization is None  # Azure's default then: access policies
    with pytest.raises(HttpResponseError) as info:
        grants.policy(API, ["read-everything"])
    assert info.value.status_code == 400


def test_another_vault_is_404_and_a_denied_vault_read_is_403(azure: AzureFake, grants: Grants) -> None:
    with pytest.raises(ResourceNotFoundError):
        grants.vaults.vaults.get(azure.resource_group, "othervault")
    azure.deny("Microsoft.KeyVault/vaults/read")
    with pytest.raises(HttpResponseError) as info:
        grants.vaults.vaults.get(azure.resource_group, azure.vault_name)
    assert info.value.status_code == 403
    assert "Microsoft.KeyVault/vaults/read" in str(info.value.error.message if info.value.error else "")

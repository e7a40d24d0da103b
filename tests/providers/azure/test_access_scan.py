"""Who can read an Azure secret: the access scan over sockets, against the fake.

A grant made out of band at each scope (a secret, the vault, its resource group, the
subscription, a management group) with each kind of role is found, with the right ``via``;
roles that cannot read values are not; an access-policy vault is read through its policies;
a source cloudsync may not read leaves the scan incomplete, never empty; and the calls the
scan adds do not grow with the number of secrets.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import open_session
from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.base import ReadQuery
from tests.conftest import CliResult
from tests.fakes.azure import AzureFake
from tests.providers.azure import stacks
from tests.providers.azure.conftest import OutOfBand
from tests.providers.azure.grants import (
    ADMINISTRATOR,
    CONDITION,
    CONTRIBUTOR,
    KEY_VAULT_READER,
    OWNER,
    READER,
    SECRETS_OFFICER,
    SECRETS_USER,
    Grants,
)
from tests.providers.azure.stacks import API, AUDITOR, WORKER

DB, CACHE = "payments--db", "payments--cache"
# A value unique to this module: no scan result may carry it.
CANARY = "canary-" + uuid.uuid4().hex


@pytest.fixture
def grants(azure: AzureFake) -> Iterator[Grants]:
    operator = Grants(azure)
    yield operator
    operator.close()


@dataclass
class Scanned:
    scan: AccessScan
    added: Counter[str]  # the calls the scan made, after the read

    def readers(self, name: str, principal: str | None = None) -> set[tuple[str, Via, str, bool]]:
        return {(r.principal, r.via, r.scope, r.conditional) for r in self.scan.readers_of(name)
                if principal is None or r.principal == principal}


@pytest.fixture
def vault(azure: AzureFake, oob: OutOfBand, tmp_path: Path) -> Callable[..., Scanned]:
    """Two secrets in the vault (set out of band), API reading DB per secret as cloudsync grants
    it; ``vault(**target)`` reads the target and scans it, like plan and drift do."""
    for name in (DB, CACHE):
        oob.secrets.set_secret(name, CANARY)
    oob.assign(DB, API)

    def scan(*, access_scan: bool = True, names: tuple[str, ...] = ()) -> Scanned:
        root = tmp_path / "stack"
        root.mkdir(exist_ok=True)
        target = stacks.target_yaml(azure)[:-1] + ("" if access_scan else ", access_scan: false") + "}"
        (root / "cloudsync.yaml").write_text(f"version: 1\nstack: payments\ntargets:\n  azure-prod: {target}\n"
                                             "policy: {builtin: false}\n")
        with open_session(load_stack(root)) as session:
            provider = session.provider("azure-prod")
            query = ReadQuery(stack="payments", declared=frozenset(names), access=frozenset())
            secrets = provider.read(query)
            before = Counter(provider.api_calls)
            result = provider.scan_access(query, secrets)
            added = Counter(provider.api_calls) - before
        stacks.OUTPUTS.append(repr(result))  # the conftest's leak check searches it for every value
        assert CANARY not in repr(result)
        return Scanned(result, added)

    return scan


def scopes(azure: AzureFake) -> dict[str, tuple[str, Via]]:
    return {"secret": (azure.secret_scope(DB), Via.SECRET),
            "vault": (azure.vault_scope, Via.VAULT),
            "resource-group": (azure.resource_group_scope, Via.RESOURCE_GROUP),
            "subscription": (azure.subscription_scope, Via.SUBSCRIPTION),
            "management-group": (azure.management_group_scope("mg-workloads"), Via.MANAGEMENT_GROUP),
            "tenant-root-group": (azure.management_group_scope(azure.tenant_id), Via.MANAGEMENT_GROUP)}


@pytest.mark.parametrize("where", ["secret", "vault", "resource-group", "subscription", "management-group",
                                   "tenant-root-group"])
@pytest.mark.parametrize("role", ["secrets-user", "secrets-officer", "administrator", "custom-secrets-star"])
def test_a_reading_role_at_each_scope_is_an_effective_reader(
        where: str, role: str, azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    guid = {"secrets-user": SECRETS_USER, "secrets-officer": SECRETS_OFFICER, "administrator": ADMINISTRATOR,
            "custom-secrets-star": ""}[role] or grants.custom_role("app secrets", ["Microsoft.KeyVault/vaults/secrets/*"])
    scope, via = scopes(azure)[where]
    grants.assign(scope, AUDITOR, guid)
    found = vault()
    assert found.scan.complete
    assert found.readers(DB, AUDITOR) == {(AUDITOR, via, scope, False)}
    # A grant on one secret reaches that secret only; any broader one reaches every secret.
    assert found.readers(CACHE, AUDITOR) == (set() if via is Via.SECRET else {(AUDITOR, via, scope, False)})
    # The per-secret reader cloudsync manages is there too, beside the broad grant.
    assert (API, Via.SECRET, azure.secret_scope(DB), False) in found.readers(DB)
    (reader,) = [r for r in found.scan.readers_of(DB) if r.principal == AUDITOR]
    assert "assignment" in reader.grant and ("app secrets" if role.startswith("custom") else "Key Vault") in reader.grant


@pytest.mark.parametrize("role", ["reader", "contributor", "owner", "key-vault-reader", "custom-not-get-secret"])
@pytest.mark.parametrize("where", ["vault", "subscription"])
def test_roles_that_cannot_read_values_are_not_readers(where: str, role: str, azure: AzureFake, grants: Grants,
                                                       vault: Callable[..., Scanned]) -> None:
    guid = {"reader": READER, "contributor": CONTRIBUTOR, "owner": OWNER, "key-vault-reader": KEY_VAULT_READER,
            "custom-not-get-secret": ""}[role] or grants.custom_role(
        "secrets but values", ["Microsoft.KeyVault/vaults/secrets/*"],
        ["Microsoft.KeyVault/vaults/secrets/getSecret/action"])
    grants.assign(scopes(azure)[where][0], AUDITOR, guid)
    found = vault()
    assert found.scan.complete
    assert found.readers(DB, AUDITOR) == set() and found.readers(CACHE, AUDITOR) == set()


def test_a_conditional_assignment_is_listed_as_conditional(azure: AzureFake, grants: Grants,
                                                           vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.resource_group_scope, AUDITOR, SECRETS_USER, condition=CONDITION)
    found = vault()
    assert found.readers(DB, AUDITOR) == {(AUDITOR, Via.RESOURCE_GROUP, azure.resource_group_scope, True)}


def test_a_group_is_listed_as_the_group_and_says_its_members_read(azure: AzureFake, grants: Grants,
                                                                  vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.vault_scope, WORKER, SECRETS_USER, principal_type="Group")
    (reader,) = [r for r in vault().scan.readers_of(CACHE) if r.principal == WORKER]
    assert reader.via is Via.VAULT and "membership not expanded" in reader.grant


def test_one_principal_with_two_grants_is_listed_once_per_grant(azure: AzureFake, grants: Grants,
                                                                 vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.vault_scope, AUDITOR, SECRETS_USER)
    grants.assign(azure.subscription_scope, AUDITOR, ADMINISTRATOR)
    assert {r.via for r in vault().scan.readers_of(DB) if r.principal == AUDITOR} == {Via.VAULT, Via.SUBSCRIPTION}


def test_removing_the_grant_clears_it(azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    assignment = grants.assign(azure.subscription_scope, AUDITOR, SECRETS_OFFICER)
    assert vault().readers(CACHE, AUDITOR)
    grants.remove(assignment)
    found = vault()
    assert found.readers(CACHE, AUDITOR) == set() and found.scan.complete


# --- the access-policy model -------------------------------------------------------------------


def test_on_access_policies_the_policies_with_get_read_and_role_assignments_do_not(
        azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    grants.permission_model(rbac=False)
    grants.policy(AUDITOR, ["get", "list"])
    grants.policy(WORKER, ["list"])  # sees names, never a value
    grants.assign(azure.vault_scope, WORKER, SECRETS_OFFICER)  # RBAC does not apply to this vault's data plane
    found = vault()
    assert found.scan.complete
    for name in (DB, CACHE):
        assert found.readers(name) == {(AUDITOR, Via.ACCESS_POLICY, azure.vault_scope, False)}
    assert any("access policies" in note and "grant no data-plane access" in note for note in found.scan.notes)
    assert found.added == Counter({"get_vault": 1})  # no role definition is read: they do not apply


def test_an_unset_permission_model_means_access_policies(azure: AzureFake, grants: Grants,
                                                         vault: Callable[..., Scanned]) -> None:
    azure.vault_resource.rbac = None  # a vault created without enableRbacAuthorization
    grants.policy(AUDITOR, ["all"])
    grants.policy(WORKER, ["get"], application_id=API)  # compound identity: only through that application
    found = vault()
    assert found.readers(CACHE) == {(AUDITOR, Via.ACCESS_POLICY, azure.vault_scope, False),
                                    (WORKER, Via.ACCESS_POLICY, azure.vault_scope, True)}


def test_removing_an_access_policy_clears_it(azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    grants.permission_model(rbac=False)
    grants.policy(AUDITOR, ["get"])
    assert vault().readers(DB, AUDITOR)
    grants.policy(AUDITOR, [], kind="remove")
    assert vault().readers(DB, AUDITOR) == set()


# --- incomplete, never empty -------------------------------------------------------------------


def test_denied_role_definitions_leave_the_scan_incomplete_naming_the_permission(
        azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.resource_group_scope, AUDITOR, grants.custom_role("ops", ["Microsoft.KeyVault/vaults/*"]))
    grants.assign(azure.vault_scope, WORKER, grants.custom_role("more ops", ["Microsoft.KeyVault/vaults/*/read"]))
    azure.deny("Microsoft.Authorization/roleDefinitions/read")
    found = vault()
    assert not found.scan.complete
    for name in (DB, CACHE):
        assert not found.scan.complete_for(name)
        assert any("Microsoft.Authorization/roleDefinitions/read" in why for why in found.scan.reasons_for(name))
    # The reader cloudsync granted is still known (it assigns that role by its id); the rest is unknown.
    assert found.readers(DB) == {(API, Via.SECRET, azure.secret_scope(DB), False)}
    assert found.added["get_role_definition"] == 1  # refused once: the others are not asked for


def test_a_denied_vault_read_leaves_the_scan_incomplete_and_keeps_the_role_assignments(
        azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.vault_scope, AUDITOR, SECRETS_USER)
    azure.rbac_header = False  # the list's answers do not show the model: the vault must be read
    azure.deny("Microsoft.KeyVault/vaults/read")
    found = vault()
    assert not found.scan.complete
    assert any("Microsoft.KeyVault/vaults/read" in why for why in found.scan.reasons_for(CACHE))
    assert found.readers(CACHE, AUDITOR) == {(AUDITOR, Via.VAULT, azure.vault_scope, False)}


def test_a_vault_arm_does_not_know_is_incomplete(azure: AzureFake, vault: Callable[..., Scanned]) -> None:
    azure.vault_resource.name = "renamedvault"
    azure.rbac_header = False
    found = vault()
    assert not found.scan.complete
    assert any("was not found" in why and "vault_name" in why for why in found.scan.reasons)


def test_access_scan_false_reads_nothing_more_and_marks_every_secret_incomplete(
        azure: AzureFake, grants: Grants, vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.subscription_scope, AUDITOR, SECRETS_USER)
    found = vault(access_scan=False)
    assert found.added == Counter()
    assert set(found.scan.readers) == {DB, CACHE}
    for name in (DB, CACHE):
        assert found.scan.reasons_for(name) == ("grants at the vault and above, role definitions and access policies "
                                                "not scanned (access_scan: false)",)
    assert found.readers(DB) == {(API, Via.SECRET, azure.secret_scope(DB), False)}  # what the read knows
    assert azure.calls["arm.vaults.get"] == azure.calls["arm.role_definitions.get"] == 0


# --- cost and endpoints ------------------------------------------------------------------------


def test_the_scan_costs_one_call_per_custom_role_whatever_the_number_of_secrets(
        azure: AzureFake, oob: OutOfBand, grants: Grants, vault: Callable[..., Scanned]) -> None:
    custom = grants.custom_role("app secrets", ["Microsoft.KeyVault/vaults/secrets/*"])
    grants.assign(azure.resource_group_scope, AUDITOR, SECRETS_OFFICER)
    grants.assign(azure.subscription_scope, WORKER, custom)
    grants.assign(azure.vault_scope, WORKER, SECRETS_OFFICER)  # a role already counted
    azure.arm_page_size = 2  # the listing spans pages: still none added by the scan
    small = vault()
    for i in range(30):
        oob.secrets.set_secret(f"more-{i:02d}", CANARY)
        oob.assign(f"more-{i:02d}", API, name=str(uuid.uuid4()))
    large = vault()
    # Roles: Secrets User (per-secret readers) and Secrets Officer are built-in, known by their ids;
    # only the custom role is read. The list showed the RBAC model: the vault is not read.
    assert small.added == large.added == Counter({"get_role_definition": 1})
    assert len(large.scan.readers) == 32 and all(large.readers(f"more-{i:02d}", AUDITOR) for i in range(30))


def test_every_arm_call_goes_to_the_targets_arm_endpoint(azure: AzureFake, grants: Grants,
                                                         vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.vault_scope, AUDITOR, SECRETS_USER)
    azure.hosts.clear()
    vault()
    host = azure.url.removeprefix("https://")
    assert azure.hosts == Counter({f"arm {host}": azure.hosts[f"arm {host}"], f"kv {host}": azure.hosts[f"kv {host}"]})
    assert azure.hosts[f"arm {host}"] == 1  # role assignments; Secrets User is built-in, the model was seen


def test_the_vault_is_read_when_the_answers_do_not_show_its_model(azure: AzureFake, grants: Grants,
                                                                  vault: Callable[..., Scanned]) -> None:
    grants.assign(azure.vault_scope, AUDITOR, SECRETS_USER)
    assert vault().added == Counter()  # RBAC seen on the list: nothing more to read
    azure.rbac_header = False
    found = vault()
    assert found.added == Counter({"get_vault": 1})
    assert found.readers(CACHE, AUDITOR) == {(AUDITOR, Via.VAULT, azure.vault_scope, False)}
    grants.permission_model(rbac=False)  # on access policies Key Vault names no assignment
    azure.rbac_header = True
    assert vault().added == Counter({"get_vault": 1})


def test_a_custom_role_is_read_and_a_built_in_one_is_not(azure: AzureFake, grants: Grants,
                                                         vault: Callable[..., Scanned]) -> None:
    # A custom role that looks like a built-in by name is judged by its definition, read from ARM.
    lookalike = grants.custom_role("Key Vault Reader", ["Microsoft.KeyVault/vaults/secrets/getSecret/action"])
    grants.assign(azure.vault_scope, AUDITOR, lookalike)
    grants.assign(azure.vault_scope, WORKER, KEY_VAULT_READER)
    found = vault()
    assert found.added == Counter({"get_role_definition": 1})
    assert found.readers(CACHE, AUDITOR) == {(AUDITOR, Via.VAULT, azure.vault_scope, False)}
    assert found.readers(CACHE, WORKER) == set()  # Key Vault Reader reads metadata, never a value


def test_a_reader_is_a_plain_value_object() -> None:
    # The scan hands the core EffectiveReader entries only: nothing SDK-shaped crosses the boundary.
    reader = EffectiveReader(API, Via.VAULT, "/subscriptions/s", "role X", conditional=False)
    assert reader == EffectiveReader(API, Via.VAULT, "/subscriptions/s", "role X")


# --- permissions and configuration -------------------------------------------------------------


def test_permissions_list_the_scans_reads_unless_the_target_opts_out(cli: Callable[..., CliResult],
                                                                      azure_stack: Callable[..., Path],
                                                                      azure: AzureFake) -> None:
    scan = ("Microsoft.Authorization/roleDefinitions/read", "Microsoft.KeyVault/vaults/read")

    def sections(root: Path) -> dict[str, str]:
        shown = cli("permissions", "-C", str(root), "--target", "azure-prod")
        assert shown.code == 0, shown.output
        return dict(re.findall(r"^.*\(([a-z-]+)\):\n((?:  .*\n)+)", shown.stdout, re.MULTILINE))

    root = azure_stack("")
    scanned = sections(root)
    assert set(scanned) == {"plan-metadata", "plan", "apply"}
    for operation, listed in scanned.items():  # plan, drift and apply all run the scan
        assert all(permission in listed for permission in scan), operation
    config = root / "cloudsync.yaml"
    config.write_text(config.read_text().replace("arm_endpoint:", "access_scan: false, arm_endpoint:"))
    opted_out = sections(root)
    for operation, listed in opted_out.items():
        assert not any(permission in listed for permission in scan), operation
    assert "Microsoft.Authorization/roleAssignments/read" in opted_out["plan-metadata"]  # per-secret readers still
    assert azure.calls.total() == 0


def test_access_scan_must_be_a_boolean(cli: Callable[..., CliResult], azure: AzureFake, tmp_path: Path) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    target = stacks.target_yaml(azure)[:-1] + ", access_scan: sometimes}"
    (root / "cloudsync.yaml").write_text(f"version: 1\nstack: payments\ntargets:\n  azure-prod: {target}\n")
    checked = cli("validate", "-C", str(root))
    assert checked.code == 1
    assert "access_scan" in checked.output and "cloudsync.yaml:4" in checked.output
    assert "Traceback" not in checked.output

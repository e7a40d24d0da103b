"""The access scan's pure rules: Azure's data-action wildcards, role definitions, where an
assignment sits relative to the vault, and the evaluation of one snapshot (no server)."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsync.providers.access import Via
from cloudsync.providers.azure.access import AccessPolicy, VaultModel, evaluate_access, placement
from cloudsync.providers.azure.rbac import Assignment
from cloudsync.providers.azure.roles import GET_SECRET, PermissionBlock, RoleDefinition, action_matches

VAULT = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/v1"


@pytest.mark.parametrize(("pattern", "matches"), [
    (GET_SECRET, True),
    (GET_SECRET.upper(), True),  # Azure compares actions case-insensitively
    ("Microsoft.KeyVault/vaults/secrets/*", True),
    ("Microsoft.KeyVault/vaults/*", True),
    ("Microsoft.KeyVault/*", True),
    ("*", True),
    ("*/action", True),
    ("Microsoft.KeyVault/vaults/secrets/get*", True),
    ("Microsoft.KeyVault/vaults/secrets/*/*", True),
    ("Microsoft.KeyVault/*/getSecret/action", True),
    ("Microsoft.KeyVault/vaults/*/read", False),  # Key Vault Reader: metadata only
    ("Microsoft.KeyVault/vaults/secrets/readMetadata/action", False),
    ("Microsoft.KeyVault/vaults/keys/*", False),
    ("Microsoft.KeyVault/vaults/secrets/getSecret/action/*", False),
    ("Microsoft.KeyVault/vaults/secrets/getSecret", False),
    ("*/read", False),  # Reader
    ("", False),
])
def test_data_action_wildcards(pattern: str, matches: bool) -> None:
    assert action_matches(pattern, GET_SECRET) is matches


@given(st.text(alphabet="ab/*", max_size=10), st.text(alphabet="ab/", max_size=10))
def test_the_matcher_agrees_with_a_reference_glob(pattern: str, action: str) -> None:
    # fnmatch's "*" also spans "/", as Azure's does; the alphabet has no other wildcard.
    assert action_matches(pattern, action) is fnmatch.fnmatchcase(action, pattern)


def test_many_stars_stay_cheap() -> None:
    assert not action_matches("*a" * 500 + "b", "a" * 5000)


def test_not_data_actions_subtract_within_their_block_only() -> None:
    excluded = PermissionBlock(("Microsoft.KeyVault/vaults/secrets/*",),
                               ("Microsoft.KeyVault/vaults/secrets/getSecret/action",))
    assert RoleDefinition("r", "metadata only", (excluded,)).reads_secrets is None
    again = PermissionBlock(("Microsoft.KeyVault/vaults/*",))
    assert RoleDefinition("r", "two blocks", (excluded, again)).reads_secrets == "Microsoft.KeyVault/vaults/*"


@pytest.mark.parametrize(("scope", "expected"), [
    (VAULT, (Via.VAULT, None)),
    (VAULT.upper() + "/", (Via.VAULT, None)),
    (VAULT + "/secrets/Payments--DB", (Via.SECRET, "payments--db")),
    (VAULT + "/keys/k1", None),
    (VAULT + "/certificates/c1", None),
    (VAULT + "/secrets/a/versions", None),
    ("/subscriptions/s1/resourceGroups/rg1", (Via.RESOURCE_GROUP, None)),
    ("/subscriptions/S1/resourcegroups/RG1/", (Via.RESOURCE_GROUP, None)),
    ("/subscriptions/s1", (Via.SUBSCRIPTION, None)),
    ("/providers/Microsoft.Management/managementGroups/mg1", (Via.MANAGEMENT_GROUP, None)),
    ("/", (Via.MANAGEMENT_GROUP, None)),
    ("/subscriptions/s1/resourceGroups/rg2", None),
    ("/subscriptions/s2", None),
    ("/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/v10", None),
    ("/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.KeyVault", None),
])
def test_where_an_assignment_sits(scope: str, expected: tuple[Via, str | None] | None) -> None:
    assert placement(scope, VAULT) == expected


def _assignment(scope: str, role: str, principal: str = "p1", condition: str | None = None) -> Assignment:
    return Assignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/a-{principal}-{role}", scope,
                      f"/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/{role}", principal,
                      "User", condition)


READS = RoleDefinition("reads", "Reads", (PermissionBlock((GET_SECRET,)),))
LISTS = RoleDefinition("lists", "Lists", (PermissionBlock(("Microsoft.KeyVault/vaults/secrets/readMetadata/action",)),))


def test_evaluation_of_one_snapshot() -> None:
    assignments = [_assignment(VAULT + "/secrets/a", "reads", "p1"), _assignment(VAULT, "lists", "p2"),
                   _assignment("/subscriptions/s1", "reads", "p3", condition="@Resource[x] StringEquals 'y'"),
                   _assignment(VAULT + "/secrets/gone", "unknown", "p4"),  # a secret not scanned: not needed
                   _assignment("/subscriptions/s1/resourceGroups/rg1", "unknown", "p5")]
    scan = evaluate_access(["A", "b"], VAULT, assignments, {"reads": READS, "lists": LISTS}, VaultModel(rbac=True),
                           unresolved={"unknown": "permission denied: needs Microsoft.Authorization/roleDefinitions/read"})
    assert [(r.principal, r.via, r.conditional) for r in scan.readers_of("A")] == [
        ("p1", Via.SECRET, False), ("p3", Via.SUBSCRIPTION, True)]
    assert [(r.principal, r.via) for r in scan.readers_of("b")] == [("p3", Via.SUBSCRIPTION)]
    # The resource group's unreadable role reaches every secret: the whole target is incomplete.
    assert not scan.complete_for("A") and not scan.complete_for("b")
    assert "roleDefinitions/read" in scan.reasons[0] and "rg1" in scan.reasons[0]


def test_an_unreadable_role_on_one_secret_leaves_only_that_secret_incomplete() -> None:
    scan = evaluate_access(["a", "b"], VAULT, [_assignment(VAULT + "/secrets/a", "unknown")], {}, VaultModel(rbac=True),
                           unresolved={"unknown": "not found"})
    assert not scan.complete_for("a") and scan.complete_for("b")


def test_access_policies_decide_when_the_vault_does_not_use_rbac() -> None:
    policies = (AccessPolicy("p1", ("get",)), AccessPolicy("p2", ("list", "set")), AccessPolicy("p3", ("all",), "app"))
    scan = evaluate_access(["a"], VAULT, [_assignment(VAULT, "reads", "p9")], {"reads": READS},
                           VaultModel(rbac=False, policies=policies))
    assert [(r.principal, r.via, r.scope, r.conditional) for r in scan.readers_of("a")] == [
        ("p1", Via.ACCESS_POLICY, VAULT, False), ("p3", Via.ACCESS_POLICY, VAULT, True)]
    assert scan.complete and scan.notes


def test_an_unknown_permission_model_lists_role_assignments_as_a_lower_bound() -> None:
    scan = evaluate_access(["a"], VAULT, [_assignment(VAULT, "reads")], {"reads": READS}, None,
                           reasons=("the vault's permission model is unknown",))
    assert [r.principal for r in scan.readers_of("a")] == ["p1"] and not scan.complete

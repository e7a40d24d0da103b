"""Least privilege on Azure: each operation works with exactly the RBAC actions and data
actions ``cloudsync permissions`` prints, and fails naming any one taken away (the fake's
``allow_only``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.fakes.azure import AzureFake
from tests.fakes.azure.roles import Definition
from tests.providers.contract.clouds import Azure
from tests.providers.contract.drive import Driver
from tests.providers.contract.privilege import Scenario, check_operation

BEFORE = """\
- name: payments/rotating
  targets: [T]
  value: {env: ROTATING}
  readers: [api]
- name: payments/stable
  description: Kept as it is
  targets: [T]
  value: {generate: {length: 24}}
- name: payments/retired
  targets: [T]
  value: {generate: {length: 24}}
- name: payments/purged
  targets: [T]
  value: {generate: {length: 24}}
  purge_on_delete: true
"""
REVIVED = """\
- name: payments/revived
  targets: [T]
  value: {generate: {length: 24}}
"""
# What apply is asked to do: a new value and a reader swapped (assignment created and
# deleted), a description changed alone (a PATCH), a soft-deleted secret declared again
# (recovered), a secret no longer declared (deleted) and one deleted with purge_on_delete.
AFTER = """\
- name: payments/rotating
  targets: [T]
  value: {env: ROTATING}
  readers: [worker]
- name: payments/stable
  description: Changed alone
  targets: [T]
  value: {generate: {length: 24}}
""" + REVIVED

OPS_ROLE = "7d5c6a1e-0000-4000-8000-00000000c0de"  # a custom role, so its definition must be read
OPS_PRINCIPAL = "00000000-0000-4000-8000-0000000000d1"
_SECTION = re.compile(r"^.*\((plan-metadata|plan|apply)\):$")
_LINE = re.compile(r"^\s+(?:dataAction|action)\s+(\S+)")


def printed(cli: Callable[..., CliResult], root: Path) -> dict[str, set[str]]:
    """Operation -> the actions and data actions printed for it."""
    result = cli("permissions", "--target", Azure.target, "-C", str(root))
    assert result.code == 0, result.output
    needed: dict[str, set[str]] = {}
    operation = None
    for line in result.stdout.splitlines():
        section = _SECTION.match(line)
        if section:
            operation = section[1]
            needed[operation] = set()
        elif not line.strip():
            operation = None
        elif operation is not None and (permission := _LINE.match(line)):
            needed[operation].add(permission[1])
    assert set(needed) == {"plan-metadata", "plan", "apply"}, result.stdout
    return needed


@pytest.fixture
def scenario(azure: AzureFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    cloud = Azure(tmp_path, azure, secrets=None)  # type: ignore[arg-type]  # no out-of-band client needed

    def prepare(operation: str) -> Driver:
        azure.reset()
        # Both of the scan's optional reads happen: a custom role at the vault (built-in roles are
        # known by their ids) and a vault whose answers do not name the authorising assignment.
        azure.roles.add(Definition(OPS_ROLE, "vault ops", "test role", False, data_actions=("Microsoft.KeyVault/vaults/*",)))
        azure.rbac.create(azure.vault_scope, str(uuid.uuid5(uuid.NAMESPACE_URL, OPS_ROLE)), {"properties": {
            "roleDefinitionId": f"{azure.subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/{OPS_ROLE}",
            "principalId": OPS_PRINCIPAL, "principalType": "ServicePrincipal"}})
        azure.rbac_header = False
        driver = cloud.driver()
        monkeypatch.setenv("ROTATING", "first-value-of-the-rotating-secret")
        driver.declare(BEFORE + REVIVED)
        driver.applied()
        driver.declare(BEFORE)  # revived: soft-deleted now
        driver.applied()
        azure.vault.settle_all()
        if operation == "apply":
            monkeypatch.setenv("ROTATING", "second-value-of-the-rotating-secret")
            driver.declare(AFTER)
        return driver

    # The access scan's reads: without one, every run still succeeds and says which readers
    # are unknown, naming the permission.
    return Scenario(prepare, lambda actions: azure.allow_only(*actions),
                    scan=frozenset({"Microsoft.Authorization/roleDefinitions/read", "Microsoft.KeyVault/vaults/read"}))


@pytest.mark.parametrize("operation", ["plan-metadata", "plan", "apply"])
def test_exactly_the_printed_permissions_suffice_and_each_is_needed(
        operation: str, scenario: Scenario, cli: Callable[..., CliResult], azure: AzureFake,
        tmp_path: Path) -> None:
    Azure(tmp_path, azure, secrets=None).driver().declare(BEFORE)  # type: ignore[arg-type]
    check_operation(scenario, printed(cli, tmp_path / "stack"), operation)

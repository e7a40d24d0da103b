"""A broad grant added out of band on Azure, as a user meets it: in ``drift``, ``cloudsync
access``, the plan and the built-in policy; and gone from all of them once removed. The
installed command in a subprocess, against the fake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, assert_no_canary
from tests.fakes.azure import AzureFake
from tests.providers.azure.grants import SECRETS_OFFICER, Grants
from tests.providers.azure.stacks import API, AUDITOR, WORKER, target_yaml

Cli = Callable[..., CliResult]
OUTSIDER = "00000000-0000-4000-8000-0000000000c1"  # no principal of the stack
DB, CACHE = "azure-prod:payments/db", "azure-prod:payments/cache"


@pytest.fixture
def grants(azure: AzureFake) -> Iterator[Grants]:
    operator = Grants(azure)
    yield operator
    operator.close()


@pytest.fixture
def root(azure: AzureFake, tmp_path: Path, cli: Cli, cli_env: dict[str, str], canary: str) -> Path:
    """A stack whose two secrets each declare one reader, applied."""
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "cloudsync.yaml").write_text(
        "version: 1\nstack: payments\n"
        f"targets:\n  azure-prod: {target_yaml(azure)}\n"
        f"principals:\n  api: {{azure: {API}}}\n  worker: {{azure: {WORKER}}}\n  auditor: {{azure: {AUDITOR}}}\n"
        # Only the access policies matter here; the other prod rules want expiry, protection...
        "policy: {disabled: [CS005, CS006, CS007, CS008, CS010, CS011]}\n"
        "secrets:\n"
        "  - {name: payments/db, targets: [azure-prod], labels: {env: prod}, value: {env: DB_VALUE}, readers: [api]}\n"
        "  - {name: payments/cache, targets: [azure-prod], labels: {env: dev}, value: {env: DB_VALUE}, "
        "readers: [worker]}\n")
    applied = cli("apply", "-C", str(folder), "--auto-approve", env={**cli_env, "DB_VALUE": canary})
    assert applied.code == 0, applied.output
    return folder


def run(cli: Cli, env: dict[str, str], canary: str, *args: str) -> CliResult:
    result = cli(*args, env={**env, "DB_VALUE": canary})
    assert "Traceback" not in result.output
    assert_no_canary(canary, result.output)
    return result


def readers_by_address(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {s["address"]: s["readers"] for s in report["secrets"]}


def test_a_grant_on_the_resource_group_shows_everywhere_and_goes_when_removed(
        azure: AzureFake, grants: Grants, root: Path, cli: Cli, cli_env: dict[str, str], canary: str) -> None:
    assignment = grants.assign(azure.resource_group_scope, OUTSIDER, SECRETS_OFFICER)

    drifted = run(cli, cli_env, canary, "drift", "-C", str(root), "--format", "json")
    assert drifted.code == 2, drifted.output
    inherited = {(d["address"], d.get("principal"), d.get("via")) for d in json.loads(drifted.stdout)["drifted"]
                 if d["kind"] == "inherited"}
    assert inherited == {(DB, OUTSIDER, "resource-group"), (CACHE, OUTSIDER, "resource-group")}

    report = json.loads(run(cli, cli_env, canary, "access", "-C", str(root), "--format", "json").stdout)
    readers = readers_by_address(report)
    assert {(r["principal"], r["via"], r["declared"]) for r in readers[DB]} == {
        (API, "secret", True), (OUTSIDER, "resource-group", False)}
    (broad,) = [r for r in readers[CACHE] if r["principal"] == OUTSIDER]
    assert broad["scope"] == azure.resource_group_scope and "Key Vault Secrets Officer" in broad["grant"]
    assert all(s["readers_complete"] for s in report["secrets"])

    mine = json.loads(run(cli, cli_env, canary, "access", "-C", str(root), "--principal", OUTSIDER,
                          "--format", "json").stdout)
    assert {a for p in mine["principals"] for a in p["can_read"]} == {DB, CACHE}

    planned = run(cli, cli_env, canary, "plan", "-C", str(root), "--format", "json")
    assert planned.code == 1, planned.output  # the prod secret fails the built-in policy
    violations = {(v["policy"], v["severity"], v["address"]) for v in json.loads(planned.stdout)["policy"]["violations"]}
    assert {("CS014", "error", DB), ("CS015", "warning", CACHE)} <= violations
    text = run(cli, cli_env, canary, "plan", "-C", str(root))
    assert OUTSIDER in text.output

    grants.remove(assignment)
    assert run(cli, cli_env, canary, "drift", "-C", str(root), "--format", "json").code == 0
    report = json.loads(run(cli, cli_env, canary, "access", "-C", str(root), "--format", "json").stdout)
    assert OUTSIDER not in {r["principal"] for readers in readers_by_address(report).values() for r in readers}
    assert run(cli, cli_env, canary, "plan", "-C", str(root), "--detailed-exitcode").code == 0


def test_an_access_policy_vault_reports_its_policies_as_readers(
        azure: AzureFake, grants: Grants, root: Path, cli: Cli, cli_env: dict[str, str], canary: str) -> None:
    grants.permission_model(rbac=False)
    grants.policy(OUTSIDER, ["get", "list"])
    report = json.loads(run(cli, cli_env, canary, "access", "-C", str(root), "--format", "json").stdout)
    readers = readers_by_address(report)
    # The reviewer is told why: the vault's permission model, not a missing grant.
    assert any("uses access policies" in d["message"] for d in report["diagnostics"])
    # Role assignments grant nothing on this vault: the declared per-secret readers are not effective.
    assert {(r["principal"], r["via"], r["declared"]) for r in readers[DB]} == {(OUTSIDER, "access-policy", False)}
    drifted = json.loads(run(cli, cli_env, canary, "drift", "-C", str(root), "--format", "json").stdout)
    assert (DB, OUTSIDER, "access-policy") in {(d["address"], d.get("principal"), d.get("via"))
                                                for d in drifted["drifted"]}


def test_a_denied_scan_says_unknown_never_none(azure: AzureFake, grants: Grants, root: Path, cli: Cli,
                                               cli_env: dict[str, str], canary: str) -> None:
    # A custom role at the vault: only its definition says whether it reads (built-ins are known).
    grants.assign(azure.vault_scope, OUTSIDER, grants.custom_role("vault ops", ["Microsoft.KeyVault/vaults/*/read"]))
    azure.deny("Microsoft.Authorization/roleDefinitions/read")
    report = json.loads(run(cli, cli_env, canary, "access", "-C", str(root), "--format", "json").stdout)
    assert [s["readers_complete"] for s in report["secrets"]] == [False, False]
    shown = run(cli, cli_env, canary, "access", "-C", str(root))
    assert shown.code == 0 and "unknown" in shown.output.lower()


def test_a_plan_in_a_new_process_learns_the_rbac_model_from_the_list_and_reads_no_vault(
        azure: AzureFake, root: Path, cli: Cli, cli_env: dict[str, str], canary: str) -> None:
    # A new process meets Key Vault's 401 challenge first (no assignment named in it): only the
    # answers that served a page count, so the vault resource is still not read.
    azure.calls.clear()
    assert run(cli, cli_env, canary, "plan", "-C", str(root), "--detailed-exitcode").code == 0
    assert azure.calls["kv.challenge"] >= 1
    assert azure.calls["arm.vaults.get"] == 0 and azure.calls["arm.role_definitions.get"] == 0
    azure.rbac_header = False  # answers that do not show the model: the vault is read
    assert run(cli, cli_env, canary, "plan", "-C", str(root), "--detailed-exitcode").code == 0
    assert azure.calls["arm.vaults.get"] == 1

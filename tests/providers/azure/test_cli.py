"""The installed ``cloudsync`` command against the fake, in a subprocess, as CI runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.azure import AzureFake

Cli = Callable[..., CliResult]

STACK = """
- name: payments/db-password
  targets: [azure-prod]
  description: Postgres password
  value: {env: DB_PASSWORD}
  expires: 30d
  readers: [api]
"""


@pytest.fixture
def root(azure_stack: Callable[..., Path]) -> Path:
    return azure_stack(STACK)


def test_plan_apply_plan(cli: Cli, root: Path, cli_env: dict[str, str], canary: str, azure: AzureFake,
                         tmp_path: Path) -> None:
    env = {**cli_env, "DB_PASSWORD": canary, "CLOUDSYNC_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    planned = cli("plan", "-C", str(root), "--format", "json", env=env)
    assert planned.code == 0, planned.output
    body = json.loads(planned.stdout)
    assert [(c["address"], c["action"], c["reasons"]) for c in body["changes"]] == [
        ("azure-prod:payments/db-password", "create", ["value", "access", "expiry"])]
    assert body["changes"][0]["remote_name"] == "payments--db-password"
    applied = cli("apply", "-C", str(root), "--auto-approve", env=env)
    assert applied.code == 0, applied.output
    again = cli("plan", "-C", str(root), "--detailed-exitcode", env=env)
    assert again.code == 0, again.output
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.value == canary
    assert_no_canary(canary, planned.output, applied.output, again.output)
    assert files_containing(tmp_path, canary) == []


def test_drift_shows_in_a_metadata_only_plan(cli: Cli, root: Path, cli_env: dict[str, str], canary: str,
                                             azure: AzureFake) -> None:
    env = {**cli_env, "DB_PASSWORD": canary}
    assert cli("apply", "-C", str(root), "--auto-approve", env=env).code == 0
    azure.vault.set_secret("payments--db-password", {"value": "changed-by-hand"})
    azure.calls.clear()
    drifted = cli("plan", "-C", str(root), "--metadata-only", "--detailed-exitcode", env=cli_env)
    assert drifted.code == 2, drifted.output
    assert "changed outside cloudsync" in drifted.stdout
    assert azure.calls["kv.get"] == 0
    assert_no_canary(canary, drifted.output)
    assert "changed-by-hand" not in drifted.output


def test_permissions_lists_minimal_rbac_actions(cli: Cli, root: Path, azure: AzureFake) -> None:
    shown = cli("permissions", "-C", str(root), "--target", "azure-prod")  # no credentials needed
    assert shown.code == 0, shown.output
    text = shown.stdout
    for action in ("Microsoft.KeyVault/vaults/secrets/readMetadata/action",
                   "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                   "Microsoft.KeyVault/vaults/secrets/setSecret/action",
                   "Microsoft.Authorization/roleAssignments/write"):
        assert action in text
    metadata_section = text.split("plan (plan):")[0]
    assert "getSecret" not in metadata_section and "setSecret" not in metadata_section
    assert azure.vault_scope in text
    assert "4633458b-17de-408a-b874-0445c86b69e6" in text  # the condition limiting role grants
    assert azure.calls.total() == 0


def test_missing_credentials_are_one_clear_line(cli: Cli, root: Path, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"}
    failed = cli("plan", "-C", str(root), "--metadata-only", env=env)
    assert failed.code == 1
    errors = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, failed.stderr
    assert "target azure-prod" in errors[0] and "no usable Azure credential" in errors[0]
    assert "Traceback" not in failed.output

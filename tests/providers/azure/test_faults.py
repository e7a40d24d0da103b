"""Throttling, server errors, dropped connections, missing permissions and credentials."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import build_plan, open_session
from tests.conftest import assert_no_canary
from tests.fakes.azure import AzureFake
from tests.providers.azure.stacks import apply, changes, plan

STACK = """
- name: payments/db-password
  targets: [azure-prod]
  value: {env: DB_PASSWORD}
  readers: [api]
- name: payments/token
  targets: [azure-prod]
  value: {generate: {length: 16}}
"""


@pytest.fixture
def root(azure_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return azure_stack(STACK)


def test_apply_survives_429_beyond_the_sdk_retries_honouring_retry_after(azure: AzureFake, root: Path) -> None:
    apply(root)  # the fingerprint key and both secrets exist
    root.joinpath("cloudsync.yaml").write_text(root.joinpath("cloudsync.yaml").read_text().replace("16", "20"))
    # Four 429s: the SDK's own retries (3 attempts per write) are exhausted once, then
    # the apply engine retries the change after the Retry-After the vault asked for.
    azure.inject(429, 4, retry_after="0.2", operations=["kv.set"])
    slept: list[float] = []
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets))
        assert changes(run) == {"payments/token": ("update", ("value",))}
        report = apply_plan(session, run, sleep=slept.append)
    assert report.ok, [r.error for r in report.results]
    assert report.results[0].attempts == 2
    assert slept == [0.2]
    assert azure.calls["fault.429"] == 4
    assert plan(root).plan.real_changes == []


def test_plan_survives_throttling_and_server_errors(azure: AzureFake, root: Path) -> None:
    apply(root)
    azure.inject(429, 2, retry_after="0.1", operations=["kv.list"])
    azure.inject(503, 2, operations=["arm.role_assignments.list"])
    assert plan(root).plan.real_changes == []
    assert azure.calls["fault.429"] == 2 and azure.calls["fault.503"] == 2


def test_503_on_a_non_idempotent_update_converges(azure: AzureFake, root: Path, canary: str) -> None:
    # azure-core does not retry a PATCH on 503; the engine retries the whole change,
    # which writes a fresh version and stamps it: the result is still consistent.
    azure.inject(503, 1, operations=["kv.update"])
    _, report = apply(root)
    assert report.ok, [r.error for r in report.results]
    assert azure.calls["fault.503"] == 1
    assert plan(root).plan.real_changes == []
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.value == canary


def test_dropped_connections_are_retried(azure: AzureFake, root: Path) -> None:
    azure.inject(0, 2, operations=["kv.set", "arm.role_assignments.create"])
    _, report = apply(root)
    assert report.ok, [r.error for r in report.results]
    assert azure.calls["fault.drop"] == 2
    assert plan(root).plan.real_changes == []


def test_missing_permission_names_the_action(azure: AzureFake, root: Path) -> None:
    azure.deny("Microsoft.KeyVault/vaults/secrets/readMetadata/action")
    with pytest.raises(CloudsyncError) as denied:
        plan(root, metadata_only=True)
    message = denied.value.diagnostics[0].message
    assert "target azure-prod" in message and "permission denied (ForbiddenByRbac)" in message
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in message
    assert "\n" not in message


def test_missing_role_assignment_permission_fails_the_change_clearly(azure: AzureFake, root: Path,
                                                                    canary: str) -> None:
    azure.deny("Microsoft.Authorization/roleAssignments/write")
    run, report = apply(root)
    failed = {r.change.secret: r.error for r in report.results if r.error}
    assert set(failed) == {"payments/db-password"}
    assert "Microsoft.Authorization/roleAssignments/write" in (failed["payments/db-password"] or "")
    assert_no_canary(canary, repr(report), repr(run))


def test_unreadable_fingerprint_key_is_never_overwritten(azure: AzureFake, root: Path) -> None:
    apply(root)
    key_before = azure.vault.snapshot("cloudsync-fingerprint-key-payments")
    assert key_before is not None
    azure.deny("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    stack = load_stack(root)
    with open_session(stack) as session, pytest.raises(CloudsyncError) as refused:
        apply_plan(session, build_plan(session, ["azure-prod"]))
    message = refused.value.diagnostics[0].message
    assert "fingerprint key" in message and "Microsoft.KeyVault/vaults/secrets/getSecret/action" in message
    key_after = azure.vault.snapshot("cloudsync-fingerprint-key-payments")
    assert key_after is not None and len(key_after.versions) == 1


@pytest.mark.parametrize("env", [
    {"AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"},  # nothing configured
    {"IDENTITY_HEADER": "not-the-right-one"},  # a managed identity that refuses us
])
def test_missing_or_failing_credentials_are_one_line_naming_the_target(
        azure: AzureFake, root: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(CloudsyncError) as failed:
        plan(root, metadata_only=True)
    diagnostic = failed.value.diagnostics[0]
    assert diagnostic.message.startswith(f"target azure-prod (vault {azure.url}")
    assert "failed (credentials): no usable Azure credential" in diagnostic.message
    assert "Azure credential" in diagnostic.message and "\n" not in diagnostic.message
    assert diagnostic.hint and "az login" in diagnostic.hint


def test_too_many_labels_for_key_vault_tags(azure: AzureFake, azure_stack: Callable[..., Path],
                                            canary: str) -> None:
    labels = ", ".join(f"l{i}: x" for i in range(10))
    root = azure_stack(f"""
    - name: many/labels
      targets: [azure-prod]
      labels: {{{labels}}}
      value: {{generate: {{length: 16}}}}
    """)
    _, report = apply(root)
    (result,) = report.results
    assert result.error is not None and "TooManyTags" in result.error and "at most" in result.error
    assert azure.vault.snapshot("many--labels") is None


def test_description_longer_than_a_content_type(azure: AzureFake, azure_stack: Callable[..., Path]) -> None:
    # Key Vault keeps a description (cloudsync's contentType) to 255 characters: refused
    # by validate at the description's line, before anything reaches the vault.
    root = azure_stack(f"""
    - name: long/description
      targets: [azure-prod]
      description: {"x" * 300}
      value: {{generate: {{length: 16}}}}
    """)
    with pytest.raises(CloudsyncError) as info:
        load_stack(root)
    (diag,) = info.value.diagnostics
    assert diag.line == 13 and diag.message.startswith("the description has 300 characters, but Key Vault keeps at "
                                                       "most 255 in a secret's contentType")


def test_readers_without_the_vault_scope(azure: AzureFake, azure_stack: Callable[..., Path], canary: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = azure_stack(STACK, subscription_id=None)
    run, report = apply(root)
    failed = {r.change.secret: r.error for r in report.results if r.error}
    assert set(failed) == {"payments/db-password"}
    assert "RbacNotConfigured" in (failed["payments/db-password"] or "")
    assert run.actual["azure-prod"] == {} or all(s.readers is None for s in run.actual["azure-prod"].values())
    assert azure.calls["arm.role_assignments.list"] == 0

"""Changes made outside cloudsync: detected without reading values, and never overwritten blindly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from cloudsync.plan.render import render_text
from tests.conftest import assert_no_canary
from tests.fakes.azure import AzureFake
from tests.providers.azure.conftest import OutOfBand
from tests.providers.azure.stacks import API, AUDITOR, WORKER, apply, changes, plan

DB = """
- name: payments/db-password
  targets: [azure-prod]
  value: {env: DB_PASSWORD}
  readers: [api]
"""


@pytest.fixture
def applied(azure_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = azure_stack(DB)
    _, report = apply(root)
    assert report.ok
    return root


def _detail(root: Path, secret: str) -> str:
    run = plan(root, metadata_only=True)
    change = next(c for c in run.plan.changes if c.secret == secret)
    return " ".join(change.details)


def test_out_of_band_version_is_detected_without_reading_values(azure: AzureFake, applied: Path,
                                                                oob: OutOfBand, canary: str) -> None:
    written = azure.vault.snapshot("payments--db-password")
    assert written is not None
    ours = written.current.id
    oob.secrets.set_secret("payments--db-password", "rotated-by-hand")  # no tags, like `az keyvault secret set`
    azure.calls.clear()
    run = plan(applied, metadata_only=True)
    assert changes(run) == {"payments/db-password": ("update", ("value",))}
    assert azure.calls["kv.get"] == 0  # not a single value read
    assert azure.calls["kv.list_versions"] == 1  # only for the secret the list could not explain
    (change,) = run.plan.real_changes
    assert change.before is not None and change.before.owner == "payments"  # ownership survives the new version
    assert change.before.record is not None and change.before.record.version == ours
    theirs = azure.vault.snapshot("payments--db-password")
    assert theirs is not None and change.before.current_version == theirs.current.id != ours
    assert "changed outside cloudsync" in " ".join(change.details)
    # Apply puts the declared value back as a new version of cloudsync's.
    _, report = apply(applied)
    assert report.ok
    after = azure.vault.snapshot("payments--db-password")
    assert after is not None and after.current.value == canary
    assert plan(applied).plan.real_changes == []


def test_out_of_band_version_with_copied_tags_is_detected(azure: AzureFake, applied: Path, oob: OutOfBand) -> None:
    # A rotation script that keeps the tags of the version it replaces.
    current = oob.secrets.list_properties_of_secret_versions("payments--db-password")
    tags = next(iter(current)).tags
    azure.vault.clock_offset += 60  # the copy is a later version (Key Vault stamps whole seconds)
    oob.secrets.set_secret("payments--db-password", "rotated-by-script", tags=tags)
    assert "changed outside cloudsync" in _detail(applied, "payments/db-password")


def test_extra_reader_assignment_is_drift_and_removed(azure: AzureFake, applied: Path, oob: OutOfBand) -> None:
    oob.assign("payments--db-password", WORKER)
    run = plan(applied)
    assert changes(run) == {"payments/db-password": ("update", ("access",))}
    assert "-" + WORKER in " ".join(run.plan.real_changes[0].details)
    _, report = apply(applied)
    assert report.ok
    assert plan(applied).plan.real_changes == []
    scope = azure.secret_scope("payments--db-password").lower()
    principals = {a["properties"]["principalId"] for a in azure.rbac.list(scope, "atScope()")
                  if a["properties"]["scope"].lower() == scope}
    assert principals == {API}


def test_removed_reader_assignment_is_drift_and_restored(azure: AzureFake, applied: Path, oob: OutOfBand) -> None:
    (assignment,) = [a for a in oob.authorization.role_assignments.list_for_scope(azure.vault_scope)
                     if a.principal_id == API]
    oob.authorization.role_assignments.delete_by_id(assignment.id or "")
    assert changes(plan(applied)) == {"payments/db-password": ("update", ("access",))}
    apply(applied)
    assert plan(applied).plan.real_changes == []


def test_other_roles_on_a_secret_are_reported_never_removed(azure: AzureFake, applied: Path,
                                                            oob: OutOfBand) -> None:
    officer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
    oob.assign("payments--db-password", AUDITOR, role=officer)
    run = plan(applied)
    assert run.plan.real_changes == []
    have = run.actual["azure-prod"]["payments--db-password"]
    assert have.other_access == (f"Key Vault Secrets Officer for {AUDITOR}",)
    assert have.readers == frozenset({API})
    # Vault-level grants are not per-secret readers either (documented).
    oob.authorization.role_assignments.create(
        azure.vault_scope, "6b9c3f0e-8f5e-4c36-9a63-6f1f0d8c0002",
        RoleAssignmentCreateParameters(role_definition_id=azure.role_definition_id, principal_id=WORKER))
    assert plan(applied).plan.real_changes == []
    _, report = apply(applied)
    assert report.results == []
    assert len(azure.rbac.list(azure.vault_scope, None)) == 3  # nothing removed


def test_out_of_band_metadata_change_is_drift(azure: AzureFake, applied: Path, oob: OutOfBand) -> None:
    props = next(p for p in oob.secrets.list_properties_of_secrets() if p.name == "payments--db-password")
    oob.secrets.update_secret_properties("payments--db-password", tags={**(props.tags or {}), "owner": "someone"})
    assert changes(plan(applied)) == {"payments/db-password": ("update", ("labels",))}


def test_unowned_secret_is_a_conflict_and_untouched(azure: AzureFake, azure_stack: Callable[..., Path],
                                                    oob: OutOfBand, canary: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    oob.secrets.set_secret("payments--api-key", "theirs", tags={"team": "other"})
    monkeypatch.setenv("API_KEY", canary)
    root = azure_stack("""
    - name: payments/api-key
      targets: [azure-prod]
      value: {env: API_KEY}
    """)
    run, report = apply(root)
    assert run.plan.real_changes == [] and report.results == []
    (diagnostic,) = [d for d in run.plan.diagnostics if "payments/api-key" in d.message]
    assert "not managed by cloudsync" in diagnostic.message
    secret = azure.vault.snapshot("payments--api-key")
    assert secret is not None and [v.value for v in secret.versions] == ["theirs"]
    assert_no_canary(canary, render_text(run.plan), repr(run.plan))


def test_remote_names_match_case_insensitively(azure: AzureFake, azure_stack: Callable[..., Path],
                                               oob: OutOfBand) -> None:
    oob.secrets.set_secret("Payments--Api-Key", "theirs")
    root = azure_stack("""
    - name: payments/api-key
      targets: [azure-prod]
      value: {generate: {length: 16}}
    """)
    run = plan(root)
    # Azure sees one secret: the declaration meets the existing one (a conflict), not a create.
    assert run.plan.real_changes == []
    assert any("not managed by cloudsync" in d.message for d in run.plan.diagnostics)


def test_owned_secret_of_another_stack_is_a_conflict(azure: AzureFake, azure_stack: Callable[..., Path],
                                                     oob: OutOfBand) -> None:
    oob.secrets.set_secret("shared--key", "v", tags={"managed-by": "cloudsync", "cloudsync-stack": "billing"})
    root = azure_stack("""
    - name: shared/key
      targets: [azure-prod]
      value: {generate: {length: 16}}
    """)
    run = plan(root)
    assert run.plan.real_changes == []
    assert any("owned by stack 'billing'" in d.message for d in run.plan.diagnostics)


def test_a_managed_out_of_band_version_keeps_its_own_labels() -> None:
    # cloudsync updated the labels (a PATCH of the current version) after an out-of-band
    # version W replaced its version V: the labels are W's, the record still names V.
    from cloudsync.providers.azure.read import Listed, _remote

    meta = {"managed-by": "cloudsync", "cloudsync-stack": "payments", "cloudsync-fp": "f" * 32,
            "cloudsync-version": "v1", "cloudsync-created": "100"}
    ours = Listed(name="s", tags={**meta, "team": "old"}, created="100", updated="100", version="v1")
    theirs = Listed(name="s", tags={**meta, "team": "new"}, created="200", updated="300", version="v2")
    listed = Listed(name="s", tags=theirs.tags, created="200", updated="300")
    remote = _remote("s", listed, [ours, theirs], None)
    assert remote.labels == {"team": "new"}
    assert remote.record is not None and remote.record.version == "v1"
    assert remote.current_version == "v2" and remote.value_drifted

"""Create, update, delete and restore through the engine against the fake, as an operator would."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.actions import Reason
from cloudsync.plan.build import open_session
from cloudsync.providers.azure import AzureProvider
from cloudsync.providers.base import (
    CreateRequest,
    NotFoundError,
    ProviderError,
    ReadQuery,
    SecretState,
    ValueRecord,
    fingerprint_key_name,
)
from cloudsync.values.secret import SecretValue
from tests.conftest import assert_no_canary
from tests.fakes.azure import AzureFake
from tests.providers.azure.conftest import OutOfBand
from tests.providers.azure.stacks import API, AUDITOR, WORKER, apply, changes, plan

DB = """
- name: payments/db-password
  targets: [azure-prod]
  labels: {env: prod}
  description: Postgres password of the payments API
  value: {env: DB_PASSWORD}
  expires: 90d
  readers: [api, worker]
"""


def _readers(fake: AzureFake, name: str) -> set[str]:
    return {a["properties"]["principalId"] for a in fake.rbac.list(fake.secret_scope(name), "atScope()")
            if a["properties"]["scope"].lower() == fake.secret_scope(name).lower()}


@contextlib.contextmanager
def _provider(root: Path) -> Iterator[AzureProvider]:
    with open_session(load_stack(root)) as session:
        provider = session.provider("azure-prod")
        assert isinstance(provider, AzureProvider)
        yield provider


def _all_reports(run: object, report: object) -> str:
    return repr(run) + repr(report)


@pytest.fixture
def db_stack(azure_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return azure_stack(DB)


def test_create_writes_value_tags_expiry_and_readers(azure: AzureFake, db_stack: Path, canary: str) -> None:
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("create", ("value", "access", "expiry"))}
    assert report.ok, [r.error for r in report.results]
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and len(secret.versions) == 1
    version = secret.current
    assert version.value == canary
    assert version.content_type == "Postgres password of the payments API"
    assert version.tags is not None
    assert version.tags["env"] == "prod" and version.tags["managed-by"] == "cloudsync"
    assert version.tags["cloudsync-stack"] == "payments"
    assert version.tags["cloudsync-version"] == version.id  # the version carries its own id
    assert version.tags["cloudsync-created"] == str(version.created)
    assert canary not in repr(version.tags)
    assert version.exp is not None
    assert abs(version.exp - (datetime.now(UTC) + timedelta(days=90)).timestamp()) < 120
    assert _readers(azure, "payments--db-password") == {API, WORKER}
    # The fingerprint key is a managed secret of the vault itself.
    key = azure.vault.snapshot(fingerprint_key_name("payments"))
    assert key is not None and key.current.tags is not None and key.current.tags["managed-by"] == "cloudsync"
    assert_no_canary(canary, _all_reports(run, report))


def test_second_plan_is_empty_and_cheap(azure: AzureFake, db_stack: Path) -> None:
    apply(db_stack)
    azure.calls.clear()
    again = plan(db_stack)
    assert again.plan.real_changes == [] and not again.plan.diagnostics
    # Revisions are stable while nothing changes (saved plans rely on it) and move on a write.
    revisions = {n: s.revision for n, s in again.actual["azure-prod"].items()}
    assert revisions == {n: s.revision for n, s in plan(db_stack, metadata_only=True).actual["azure-prod"].items()}
    azure.calls.clear()
    again = plan(db_stack)
    # One list page, one role-assignment listing, the fingerprint key: nothing per secret.
    assert azure.calls["kv.list"] == 1
    assert azure.calls["arm.role_assignments.list"] == 1
    assert azure.calls["kv.list_versions"] == 0 and azure.calls["kv.list_deleted"] == 0
    assert azure.calls["kv.get"] == 1  # the fingerprint key, to fingerprint the env value
    azure.vault.clock_offset += 5
    azure.vault.update_secret("payments--db-password", "", {"attributes": {"exp": 2_000_000_000}})
    moved = plan(db_stack, metadata_only=True).actual["azure-prod"]["payments--db-password"].revision
    assert moved != revisions["payments--db-password"]


def test_metadata_only_plan_reads_no_value(azure: AzureFake, db_stack: Path) -> None:
    apply(db_stack)
    azure.calls.clear()
    run = plan(db_stack, metadata_only=True)
    assert run.plan.real_changes == []
    assert azure.calls["kv.get"] == 0


def test_value_change_writes_one_new_version(azure: AzureFake, db_stack: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    apply(db_stack)
    monkeypatch.setenv("DB_PASSWORD", "canary-rotated-value-0001")
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("value",))}
    assert report.ok
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and [v.value for v in secret.versions][-1] == "canary-rotated-value-0001"
    assert len(secret.versions) == 2
    assert plan(db_stack).plan.real_changes == []


def test_label_and_description_change_updates_without_a_new_version(
        azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path) -> None:
    apply(db_stack)
    azure.calls.clear()
    azure_stack(DB.replace("env: prod", "env: prod, tier: gold").replace("Postgres password", "PG password"))
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("labels", "description"))}
    assert report.ok
    assert azure.calls["kv.set"] == 0 and azure.calls["kv.update"] == 1
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and len(secret.versions) == 1
    assert secret.current.tags is not None and secret.current.tags["tier"] == "gold"
    assert secret.current.content_type == "PG password of the payments API"
    assert plan(db_stack).plan.real_changes == []


def test_description_removed(azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path) -> None:
    apply(db_stack)
    azure_stack(DB.replace("  description: Postgres password of the payments API\n", ""))
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("description",))}
    assert report.ok and plan(db_stack).plan.real_changes == []


def test_readers_added_and_removed(azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path) -> None:
    apply(db_stack)
    azure_stack(DB.replace("readers: [api, worker]", "readers: [api, auditor]"))
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("access",))}
    assert report.ok
    assert _readers(azure, "payments--db-password") == {API, AUDITOR}
    assert plan(db_stack).plan.real_changes == []


def test_expiry_changed_then_removed(azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path,
                                     canary: str) -> None:
    apply(db_stack)
    azure_stack(DB.replace("expires: 90d", "expires: 30d"))
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("expiry",))}
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.exp is not None and len(secret.versions) == 1
    assert abs(secret.current.exp - (datetime.now(UTC) + timedelta(days=30)).timestamp()) < 120
    azure_stack(DB.replace("  expires: 90d\n", ""))
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("update", ("expiry",))}
    assert report.ok
    # Key Vault cannot drop an expiry from a version: the same value becomes a new version.
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.exp is None and secret.current.value == canary
    assert plan(db_stack).plan.real_changes == []  # still cloudsync's version: no value drift


def test_undeclared_secret_is_soft_deleted_and_its_readers_revoked(
        azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path) -> None:
    apply(db_stack)
    azure_stack("")
    run, report = apply(db_stack)
    assert changes(run) == {"payments--db-password": ("delete", ())}
    assert report.ok, [r.error for r in report.results]
    assert azure.vault.snapshot("payments--db-password") is None
    assert "payments--db-password" in azure.vault.deleted  # soft: recoverable
    assert _readers(azure, "payments--db-password") == set()
    assert plan(db_stack).plan.real_changes == []


def test_declared_again_after_deletion_is_restored(azure: AzureFake, azure_stack: Callable[..., Path],
                                                   db_stack: Path, canary: str) -> None:
    apply(db_stack)
    azure_stack("")
    apply(db_stack)
    azure_stack(DB)
    azure.calls.clear()
    run, report = apply(db_stack)
    assert changes(run) == {"payments/db-password": ("restore", ("access",))}
    assert report.ok, [r.error for r in report.results]
    assert azure.calls["kv.recover"] == 1 and azure.calls["kv.set"] == 0
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.value == canary  # the recovered version, not a rewrite
    assert _readers(azure, "payments--db-password") == {API, WORKER}
    assert plan(db_stack).plan.real_changes == []


def test_purge_on_delete(azure: AzureFake, azure_stack: Callable[..., Path], db_stack: Path) -> None:
    azure_stack(DB + "  purge_on_delete: true\n")
    apply(db_stack)
    azure_stack("")
    _run, report = apply(db_stack)
    assert report.ok, [r.error for r in report.results]
    assert "payments--db-password" not in azure.vault.deleted and azure.vault.snapshot("payments--db-password") is None


def test_purge_protection_keeps_the_deleted_secret(azure: AzureFake, azure_stack: Callable[..., Path],
                                                   db_stack: Path) -> None:
    azure.vault.purge_protection = True
    azure_stack(DB + "  purge_on_delete: true\n")
    apply(db_stack)
    azure_stack("")
    _run, report = apply(db_stack)
    assert report.ok
    assert "payments--db-password" in azure.vault.deleted
    assert azure.calls["kv.purge"] == 0


def _create_request(name: str, value: str, stack: str = "payments") -> CreateRequest:
    state = SecretState(name=name, labels={}, description=None, expires_at=None, readers=frozenset({API}))
    return CreateRequest(reasons=frozenset({Reason.VALUE, Reason.ACCESS}), stack=stack, name=name,
                         state=state, value=SecretValue(value), record=ValueRecord(fingerprint="f" * 32), token="t")


def test_create_over_own_soft_deleted_secret_recovers_it(azure: AzureFake, db_stack: Path, canary: str) -> None:
    # A create that meets 409 ObjectIsDeletedButRecoverable (the secret was soft-deleted
    # between plan and apply) recovers this stack's secret and writes it: no manual step.
    apply(db_stack)
    with _provider(db_stack) as provider:
        provider.apply(_create_request("payments--db-password", canary))  # retried create: owned, updated
        azure.vault.delete_secret("payments--db-password")
        azure.vault.settle_all()
        record = provider.apply(_create_request("payments--db-password", canary + "-2"))
    assert record is not None and record.version
    assert azure.calls["kv.recover"] == 1
    secret = azure.vault.snapshot("payments--db-password")
    assert secret is not None and secret.current.value == canary + "-2" and secret.current.id == record.version
    assert _readers(azure, "payments--db-password") == {API, WORKER}


def test_create_never_recovers_or_overwrites_a_foreign_secret(azure: AzureFake, db_stack: Path,
                                                              oob: OutOfBand) -> None:
    oob.secrets.set_secret("someone-elses", "theirs")
    oob.secrets.set_secret("deleted-foreign", "theirs", tags={"managed-by": "cloudsync", "cloudsync-stack": "other"})
    azure.vault.delete_secret("deleted-foreign")
    azure.vault.settle_all()
    with _provider(db_stack) as provider:
        with pytest.raises(ProviderError) as taken:
            provider.apply(_create_request("someone-elses", "mine"))
        assert taken.value.code == "NotOwned" and "already exists and is not managed by cloudsync" in taken.value.message
        with pytest.raises(ProviderError) as deleted:
            provider.apply(_create_request("deleted-foreign", "mine"))
        assert deleted.value.code == "ObjectIsDeletedButRecoverable"
    assert azure.calls["kv.recover"] == 0
    snapshot = azure.vault.snapshot("someone-elses")
    assert snapshot is not None and [v.value for v in snapshot.versions] == ["theirs"]


def test_generated_values_and_fingerprint_key_survive_a_fresh_session(
        azure: AzureFake, azure_stack: Callable[..., Path]) -> None:
    root = azure_stack("""
    - name: app/token
      targets: [azure-prod]
      value: {generate: {length: 24, charset: hex}}
    """)
    apply(root)
    secret = azure.vault.snapshot("app--token")
    assert secret is not None and len(secret.current.value) == 24
    assert plan(root).plan.real_changes == []


def test_read_value_of_a_missing_secret_is_a_provider_error(azure: AzureFake, db_stack: Path) -> None:
    with _provider(db_stack) as provider:
        with pytest.raises(NotFoundError):
            provider.read_value("nope")
        assert provider.fingerprint_key(create=False) is None
        key = provider.fingerprint_key(create=True)
        assert key is not None and provider.fingerprint_key(create=False) == key
        found = {s.name: s for s in provider.read(ReadQuery("payments", frozenset(), frozenset()))}
        assert found[fingerprint_key_name("payments")].owner == "payments"

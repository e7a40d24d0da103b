"""Throttling, outages, missing permissions, held locks, bad target settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.cloud import secretmanager

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.base import LockedError, Operation, ProviderContext, ProviderError, ReadQuery
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.calls import QuotaLimits
from cloudsync.providers.gcp.catalog import Quota
from cloudsync.providers.gcp.client import parse_endpoint
from cloudsync.providers.gcp.rules import GcpTarget
from tests.conftest import assert_no_canary
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT
from tests.providers.gcp.test_lifecycle import DB, SECRETS, versions

Client = secretmanager.SecretManagerServiceClient


@pytest.fixture
def stack(gcp_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return gcp_stack(SECRETS)


def provider(gcp: FakeSecretManager, tmp_path: Path, **fields: object) -> GcpProvider:
    fields.setdefault("endpoint", gcp.address)
    config = GcpTarget(provider="gcp", project=PROJECT, **fields)  # type: ignore[arg-type]
    return GcpProvider("gcp-prod", config, ProviderContext(stack="payments", root=tmp_path))


def test_apply_survives_injected_throttling_and_outages_without_duplicate_versions(
        stack: Path, gcp: FakeSecretManager, sm: Client, canary: str) -> None:
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 3, methods=["AddSecretVersion", "SetIamPolicy"],
               retry_delay=0.01)
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 3, methods=["CreateSecret", "UpdateSecret"], retry_delay=0.01)
    gcp.inject(grpc.StatusCode.DEADLINE_EXCEEDED, 1, methods=["AccessSecretVersion"], retry_delay=0.01)
    outcome = engine.apply(stack)
    assert gcp.pending_faults() == 0
    assert [a for _, a, _ in outcome.changes()] == ["create", "create"]
    assert versions(sm, DB) == {1: "ENABLED"}
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_a_change_that_keeps_failing_resumes_where_it_stopped_when_the_engine_retries(
        stack: Path, gcp: FakeSecretManager, sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # More failures than one call's own retries: the engine retries the whole change, and the
    # adapter resumes after the version it already wrote instead of writing another.
    monkeypatch.setenv("CLOUDSYNC_FINGERPRINT_KEY", "k" * 32)  # keep the faults for the changes
    # SetIamPolicy comes after the version (a create writes no UpdateSecret any more: its value
    # record rides on CreateSecret).
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 10, methods=["SetIamPolicy"], retry_delay=0.01)
    outcome = engine.apply(stack)
    assert max(r.attempts for r in outcome.report.results) > 1  # type: ignore[union-attr]
    assert versions(sm, DB) == {1: "ENABLED"}
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_plan_survives_throttled_reads(stack: Path, gcp: FakeSecretManager) -> None:
    engine.apply(stack)
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 2, methods=["ListSecrets", "GetIamPolicy", "GetSecretVersion"],
               retry_delay=0.01)
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 1, retry_delay=0.01)
    assert engine.plan(stack).changes() == []
    assert gcp.pending_faults() == 0


def test_an_outage_while_reading_the_fingerprint_key_never_replaces_it(
        stack: Path, gcp: FakeSecretManager, sm: Client, canary: str) -> None:
    engine.apply(stack)
    key = f"projects/{PROJECT}/secrets/cloudsync-fingerprint-key-payments"
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 5, methods=["AccessSecretVersion"], retry_delay=0.01)
    assert engine.plan(stack).changes() == []
    assert versions(sm, key) == {1: "ENABLED"}


def test_lasting_throttling_is_a_transient_error_with_the_services_retry_delay(
        gcp: FakeSecretManager, tmp_path: Path) -> None:
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 10, retry_delay=0.02)
    with pytest.raises(ProviderError) as raised:
        provider(gcp, tmp_path).read(ReadQuery(stack="payments", declared=frozenset(), access=frozenset()))
    assert raised.value.transient and raised.value.code == "RESOURCE_EXHAUSTED"
    assert raised.value.retry_after == pytest.approx(0.02)


def test_permission_denied_names_the_missing_permission(
        stack: Path, gcp: FakeSecretManager, canary: str) -> None:
    gcp.deny("SetIamPolicy")
    outcome = engine.apply(stack, expect_ok=False)
    errors = [r.error or "" for r in outcome.report.results]  # type: ignore[union-attr]
    assert all("needs secretmanager.secrets.setIamPolicy" in e for e in errors), errors
    assert all("cloudsync permissions --target gcp-prod" in e for e in errors)
    assert_no_canary(canary, outcome.rendered())

    gcp.deny("ListSecrets")
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(stack)
    assert "needs secretmanager.secrets.list" in raised.value.diagnostics[0].render()


def test_a_held_lock_stops_a_second_apply_and_is_invisible_to_plans(
        gcp: FakeSecretManager, sm: Client, tmp_path: Path) -> None:
    first, second = provider(gcp, tmp_path), provider(gcp, tmp_path)
    with first.lock("alice stack payments"):
        with pytest.raises(LockedError) as raised, second.lock("bob stack payments"):
            pass
        assert "locked by another apply (alice stack payments since" in raised.value.message
        assert "cloudsync-lock-payments" in (raised.value.hint or "")
        assert first.read(ReadQuery(stack="payments", declared=frozenset(), access=frozenset())) == []
    with second.lock("bob"):
        pass
    assert list(sm.list_secrets(request={"parent": f"projects/{PROJECT}"})) == []


def test_reading_a_missing_value_is_a_provider_error(gcp: FakeSecretManager, tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as raised:
        provider(gcp, tmp_path).read_value("nope")
    assert raised.value.code == "NOT_FOUND" and "nope" in raised.value.message


def test_plaintext_grpc_is_refused_for_a_non_loopback_endpoint(gcp: FakeSecretManager, tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as raised:
        provider(gcp, tmp_path, endpoint="grpc://10.1.2.3:8085")
    assert "unencrypted gRPC to a non-loopback host" in raised.value.message
    assert parse_endpoint("127.0.0.1:8085").tls is False
    assert parse_endpoint("localhost:1").tls is False
    assert parse_endpoint("[::1]:9").address == "[::1]:9"
    assert parse_endpoint("secretmanager.example.com").tls is True
    assert parse_endpoint("https://127.0.0.1:8443").tls is True


def test_missing_credentials_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    config = GcpTarget(provider="gcp", project=PROJECT)
    with pytest.raises(ProviderError) as raised:
        GcpProvider("gcp-prod", config, ProviderContext(stack="payments", root=tmp_path))
    assert raised.value.message == "no Google credentials found (Application Default Credentials)"
    assert raised.value.code == "NO_CREDENTIALS"
    assert "gcloud auth application-default login" in (raised.value.hint or "")


def test_replication_with_a_location_is_refused(gcp: FakeSecretManager, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="replication applies to global secrets only"):
        provider(gcp, tmp_path, location="us-east1", replication=["us-east1"])


def test_permissions_follow_the_code_paths() -> None:
    perms = GcpProvider.permissions()
    assert perms[Operation.PLAN_METADATA] == [
        "cloudasset.assets.listResource", "cloudasset.assets.searchAllIamPolicies",  # the asset index
        "iam.roles.get", "resourcemanager.projects.getIamPolicy",  # the access scan
        "secretmanager.secrets.getIamPolicy", "secretmanager.secrets.list", "secretmanager.versions.get",
        "serviceusage.services.use"]  # every Cloud Asset Inventory call checks it
    assert "secretmanager.versions.access" not in perms[Operation.PLAN_METADATA]
    assert "secretmanager.versions.destroy" not in perms[Operation.APPLY]
    assert {"secretmanager.secrets.setIamPolicy", "secretmanager.versions.add",
            "secretmanager.versions.disable"} <= set(perms[Operation.APPLY])


def test_the_quota_pacing_holds_reads_to_the_published_rate(gcp: FakeSecretManager, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 reads/min paced at 95% = 4.75/s, bursting to one read: 8 reads need about 7/4.75 s.
    monkeypatch.setattr(GcpProvider, "quota", QuotaLimits(reads_per_minute=300))
    target = provider(gcp, tmp_path)
    query = ReadQuery(stack="payments", declared=frozenset(), access=frozenset())
    started = time.monotonic()
    for _ in range(8):
        target.read(query)
    assert 1.2 < time.monotonic() - started < 4.0
    assert gcp.calls["ListSecrets"] == 8


def test_a_raised_project_quota_is_taken_from_the_target(gcp: FakeSecretManager, tmp_path: Path) -> None:
    default = provider(gcp, tmp_path)
    raised = provider(gcp, tmp_path, reads_per_minute=6000, writes_per_minute=1200)
    assert default.caller.limits.reads_per_minute == 600 and default.caller.limits.writes_per_minute == 600
    assert raised.caller.limits.reads_per_minute == 6000 and raised.caller.limits.writes_per_minute == 1200
    # 6,000 reads/min paced at 95%: 95 reads/s instead of 9.5.
    assert raised.caller.limits.per_second(Quota.READ) == pytest.approx(95.0)

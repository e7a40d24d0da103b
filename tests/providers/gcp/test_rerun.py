"""A rerun after an apply died between adding a version and recording it adds no identical second version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.cloud import secretmanager

from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.test_lifecycle import DB, SECRETS, versions


@pytest.fixture
def stack(gcp_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return gcp_stack(SECRETS)


def test_a_rerun_records_the_version_the_killed_apply_added(
        stack: Path, gcp: FakeSecretManager, sm: secretmanager.SecretManagerServiceClient, canary: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine.apply(stack)
    monkeypatch.setenv("DB_PASSWORD", canary + "-rotated")
    # The version is added, then the change stops before the labels that record it (as a kill would).
    gcp.inject(grpc.StatusCode.PERMISSION_DENIED, methods=["UpdateSecret"])
    died = engine.apply(stack, expect_ok=False)
    assert died.report is not None and not died.report.ok
    assert versions(sm, DB) == {1: "ENABLED", 2: "ENABLED"}

    rerun = engine.apply(stack)
    assert ("payments/db-password", "update", ["value"]) in rerun.changes()
    assert "AddSecretVersion" not in rerun.calls and rerun.calls["AccessSecretVersion"] >= 1
    assert versions(sm, DB) == {1: "ENABLED", 2: "ENABLED"}  # no third, identical version
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == (canary + "-rotated").encode()
    assert engine.plan(stack).changes() == []


def test_a_rerun_writes_a_new_version_when_the_unrecorded_one_holds_another_value(
        stack: Path, gcp: FakeSecretManager, sm: secretmanager.SecretManagerServiceClient, canary: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine.apply(stack)
    sm.add_secret_version(request={"parent": DB, "payload": {"data": b"someone else's"}})  # out of band
    rerun = engine.apply(stack)
    assert rerun.calls["AddSecretVersion"] == 1
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == canary.encode()

"""Changes made outside cloudsync: detected, reported, and never overwritten blindly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import secretmanager

from cloudsync.providers.base import is_reserved
from tests.conftest import assert_no_canary
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT
from tests.providers.gcp.test_lifecycle import API, DB, SECRETS, accessors, versions

Client = secretmanager.SecretManagerServiceClient


@pytest.fixture
def stack(gcp_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    path = gcp_stack(SECRETS)
    engine.apply(path)
    return path


def test_a_version_added_out_of_band_is_seen_without_reading_any_value(
        stack: Path, sm: Client, canary: str) -> None:
    sm.add_secret_version(request={"parent": DB, "payload": {"data": b"written by hand"}})
    drifted = engine.plan(stack, metadata_only=True)
    assert "AccessSecretVersion" not in drifted.calls
    change = drifted.plan.real_changes[0]
    assert (change.secret, [r.value for r in change.reasons]) == ("payments/db-password", ["value"])
    assert "version 2 is current, cloudsync wrote 1" in " ".join(change.details)

    healed = engine.apply(stack)
    assert healed.changes() == [("payments/db-password", "update", ["value"])]
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == canary.encode()
    assert versions(sm, DB) == {1: "ENABLED", 2: "ENABLED", 3: "ENABLED"}
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, drifted.rendered(), healed.rendered())


def test_a_disabled_latest_version_is_drift_because_readers_of_latest_fail(
        stack: Path, sm: Client, canary: str) -> None:
    version = sm.get_secret_version(name=f"{DB}/versions/1")
    sm.disable_secret_version(request={"name": version.name, "etag": version.etag})
    outcome = engine.plan(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["value"])]
    assert "version 1 (disabled) is current" in " ".join(outcome.plan.real_changes[0].details)
    engine.apply(stack)
    assert engine.plan(stack).changes() == []


def test_a_reader_granted_out_of_band_is_drift_and_revoked(stack: Path, sm: Client, canary: str) -> None:
    policy = sm.get_iam_policy(request={"resource": DB})
    for binding in policy.bindings:
        if binding.role == "roles/secretmanager.secretAccessor":
            binding.members.append("user:eve@example.com")
    sm.set_iam_policy(request={"resource": DB, "policy": policy})

    drifted = engine.plan(stack, metadata_only=True)
    assert drifted.changes() == [("payments/db-password", "update", ["access"])]
    assert "readers: -user:eve@example.com" in drifted.plan.real_changes[0].details
    engine.apply(stack)
    assert accessors(sm, DB) == {API}
    assert engine.plan(stack).changes() == []


def test_a_secret_not_owned_by_the_stack_is_reported_and_left_alone(
        gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    theirs = sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": "payments__db-password",
                                       "secret": {"replication": {"automatic": {}}, "labels": {"team": "dba"}}})
    sm.add_secret_version(request={"parent": theirs.name, "payload": {"data": b"theirs"}})
    other = sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": "payments__session-key",
                                      "secret": {"replication": {"automatic": {}},
                                                 "labels": {"managed-by": "cloudsync", "cloudsync-stack": "billing"}}})
    stack = gcp_stack(SECRETS)

    outcome = engine.apply(stack)
    assert outcome.changes() == []
    messages = [d.message for d in outcome.plan.diagnostics]
    assert any("payments/db-password already exists" in m and "not managed by cloudsync" in m for m in messages)
    assert any("owned by stack 'billing'" in m for m in messages)
    assert dict(sm.get_secret(name=theirs.name).labels) == {"team": "dba"}
    assert dict(sm.get_secret(name=other.name).labels)["cloudsync-stack"] == "billing"
    assert versions(sm, theirs.name) == {1: "ENABLED"}
    assert "SetIamPolicy" not in outcome.calls and "UpdateSecret" not in outcome.calls
    assert_no_canary(canary, outcome.rendered())


def test_a_concurrent_label_edit_makes_the_apply_fail_as_stale_and_survives(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    gcp_stack(SECRETS.replace("{env: prod}", "{env: staging}"))

    def someone_edits() -> None:
        secret = sm.get_secret(name=DB)
        labels = dict(secret.labels) | {"ticket": "ops-1"}
        sm.update_secret(request={"secret": {"name": DB, "labels": labels}, "update_mask": {"paths": ["labels"]}})

    outcome = engine.plan_then_apply(stack, someone_edits)
    assert outcome.report is not None and not outcome.report.ok
    error = outcome.report.results[0].error or ""
    assert "changed in the target since it was read; plan again" in error
    assert outcome.report.results[0].attempts == 1  # a conflict is not retried as if transient
    assert sm.get_secret(name=DB).labels["ticket"] == "ops-1"
    assert_no_canary(canary, outcome.rendered())


def test_a_concurrent_grant_makes_the_readers_change_fail_as_stale(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    gcp_stack(SECRETS.replace("readers: [api]\n  expires", "readers: [api, worker]\n  expires"))

    def someone_grants() -> None:
        policy = sm.get_iam_policy(request={"resource": DB})
        policy.bindings.add(role="roles/secretmanager.viewer", members=["user:bob@example.com"])
        sm.set_iam_policy(request={"resource": DB, "policy": policy})

    outcome = engine.plan_then_apply(stack, someone_grants)
    assert outcome.report is not None and not outcome.report.ok
    assert "its IAM policy was read; plan again" in (outcome.report.results[0].error or "")
    assert accessors(sm, DB) == {API}


def test_a_delete_with_a_stale_etag_is_refused(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    gcp_stack(SECRETS.split("- name: payments/session-key")[0])
    name = f"projects/{PROJECT}/secrets/payments__session-key"

    def someone_edits() -> None:
        sm.update_secret(request={"secret": {"name": name, "labels": {**sm.get_secret(name=name).labels,
                                                                       "keep": "yes"}},
                                  "update_mask": {"paths": ["labels"]}})

    outcome = engine.plan_then_apply(stack, someone_edits)
    assert outcome.report is not None and not outcome.report.ok
    assert "changed in the target since it was read; plan again" in (outcome.report.results[0].error or "")
    assert sm.get_secret(name=name).labels["keep"] == "yes"


def test_secret_etag_moving_on_version_add_does_not_break_value_writes(
        stack: Path, gcp: FakeSecretManager, sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The API reference does not say whether AddSecretVersion changes the secret's etag;
    # the adapter must work either way.
    gcp.store.secret_etag_changes_on_add = True
    monkeypatch.setenv("DB_PASSWORD", canary + "-2")
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["value"])]
    assert sm.get_secret(name=DB).labels["cloudsync-version"] == "2"
    assert engine.plan(stack).changes() == []


def test_the_fingerprint_key_lives_in_the_target_and_is_never_planned(stack: Path, sm: Client) -> None:
    key = sm.get_secret(name=f"projects/{PROJECT}/secrets/cloudsync-fingerprint-key-payments")
    assert key.labels["managed-by"] == "cloudsync" and key.labels["cloudsync-stack"] == "payments"
    outcome = engine.plan(stack)
    assert not [c for c in outcome.plan.changes if is_reserved(c.remote_name)]

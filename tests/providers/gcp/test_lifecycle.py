"""Create, update (value, labels, description, expiry, readers) and delete through the engine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud import secretmanager

from tests.conftest import assert_no_canary, files_containing
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

Client = secretmanager.SecretManagerServiceClient
State = secretmanager.SecretVersion.State
API = f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"
WORKER = f"serviceAccount:worker@{PROJECT}.iam.gserviceaccount.com"
DB = f"projects/{PROJECT}/secrets/payments__db-password"
SESSION = f"projects/{PROJECT}/secrets/payments__session-key"

SECRETS = """\
- name: payments/db-password
  description: Postgres password of the payments API
  targets: [gcp-prod]
  labels: {env: prod}
  value: {env: DB_PASSWORD}
  readers: [api]
  expires: 90d
- name: payments/session-key
  targets: [gcp-prod]
  value: {generate: {length: 40}}
  readers: [api, worker]
"""


def accessors(sm: Client, name: str) -> set[str]:
    policy = sm.get_iam_policy(request={"resource": name})
    return {m for b in policy.bindings if b.role == "roles/secretmanager.secretAccessor" for m in b.members}


def versions(sm: Client, name: str) -> dict[int, str]:
    return {int(v.name.rsplit("/", 1)[1]): State(v.state).name
            for v in sm.list_secret_versions(request={"parent": name})}


@pytest.fixture
def stack(gcp_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return gcp_stack(SECRETS)


def test_first_apply_creates_everything_and_the_next_plan_is_empty(
        stack: Path, sm: Client, canary: str, tmp_path: Path) -> None:
    first = engine.apply(stack)
    assert first.changes() == [("payments/db-password", "create", ["value", "access", "expiry"]),
                               ("payments/session-key", "create", ["value", "access"])]

    db = sm.get_secret(name=DB)
    assert dict(db.labels) | {"cloudsync-fp": "x", "cloudsync-written": "x"} == {
        "env": "prod", "managed-by": "cloudsync", "cloudsync-stack": "payments", "cloudsync-version": "1",
        "cloudsync-kid": db.labels["cloudsync-kid"], "cloudsync-fp": "x", "cloudsync-written": "x",
        "cloudsync-readers": "granted"}
    assert dict(db.annotations) == {"description": "Postgres password of the payments API",
                                    "cloudsync-versions": "1"}  # the versions cloudsync wrote
    assert "automatic" in db.replication
    assert abs(db.expire_time - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=2)
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == canary.encode()
    assert accessors(sm, DB) == {API}
    assert accessors(sm, SESSION) == {API, WORKER}

    second = engine.plan(stack)
    assert second.changes() == []
    assert second.plan.summary()["unchanged"] == 2
    # Bulk list + one page of each asset-index sweep + the IAM policy of each secret that declares
    # readers + the latest version of each (both secrets are younger than the index's lag window,
    # so it is not trusted for them yet) + the fingerprint key + the access scan's project policy.
    assert second.calls == {"ListSecrets": 1, "Assets.SearchAllIamPolicies": 1, "Assets.ListAssets": 1,
                            "GetIamPolicy": 2, "GetSecretVersion": 2, "AccessSecretVersion": 1,
                            "Projects.GetIamPolicy": 1}
    assert_no_canary(canary, first.rendered(), second.rendered())
    assert files_containing(tmp_path, canary) == []


def test_value_change_adds_a_version_records_it_and_converges(
        stack: Path, sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.apply(stack)
    monkeypatch.setenv("DB_PASSWORD", canary + "-rotated")
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["value"])]
    assert outcome.calls.get("AddSecretVersion") == 1 and outcome.calls.get("UpdateSecret") == 1
    assert versions(sm, DB) == {1: "ENABLED", 2: "ENABLED"}
    assert sm.get_secret(name=DB).labels["cloudsync-version"] == "2"
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == (canary + "-rotated").encode()
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_metadata_changes_are_one_masked_update_and_no_new_version(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    engine.apply(stack)
    gcp_stack(SECRETS.replace("{env: prod}", "{env: prod, tier: gold}")
              .replace("Postgres password of the payments API", "the payments DB password")
              .replace("expires: 90d", "expires: 30d"))
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["labels", "description", "expiry"])]
    assert "AddSecretVersion" not in outcome.calls and outcome.calls["UpdateSecret"] == 1
    db = sm.get_secret(name=DB)
    assert db.labels["tier"] == "gold" and db.annotations["description"] == "the payments DB password"
    assert db.expire_time < datetime.now(UTC) + timedelta(days=31)
    assert versions(sm, DB) == {1: "ENABLED"}
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_removing_expiry_and_description_clears_them(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    engine.apply(stack)
    gcp_stack(SECRETS.replace("  expires: 90d\n", "").replace("  description: Postgres password of the payments API\n",
                                                               ""))
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["description", "expiry"])]
    db = sm.get_secret(name=DB)
    assert "expire_time" not in db and "description" not in db.annotations
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_readers_change_touches_only_the_accessor_binding(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    engine.apply(stack)
    policy = sm.get_iam_policy(request={"resource": DB})
    policy.bindings.add(role="roles/secretmanager.viewer", members=["user:auditor@example.com"])
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=["group:oncall@example.com"],
                        condition={"expression": "request.time < timestamp('2030-01-01T00:00:00Z')",
                                   "title": "break-glass"})
    policy.version = 3
    sm.set_iam_policy(request={"resource": DB, "policy": policy})

    before = engine.plan(stack)
    db = before.run.actual["gcp-prod"]["payments__db-password"]
    assert db.readers == {API}
    assert db.other_access == ("roles/secretmanager.secretAccessor group:oncall@example.com (if break-glass)",
                               "roles/secretmanager.viewer user:auditor@example.com")
    assert before.changes() == []  # other roles are reported, not drift to undo

    gcp_stack(SECRETS.replace("readers: [api]\n  expires", "readers: [worker]\n  expires"))
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["access"])]
    after = sm.get_iam_policy(request={"resource": DB, "options": {"requested_policy_version": 3}})
    bindings = {(b.role, tuple(b.members), b.condition.title) for b in after.bindings}
    assert bindings == {("roles/secretmanager.viewer", ("user:auditor@example.com",), ""),
                        ("roles/secretmanager.secretAccessor", ("group:oncall@example.com",), "break-glass"),
                        ("roles/secretmanager.secretAccessor", (WORKER,), "")}
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_undeclared_owned_secret_is_deleted_with_its_versions(
        gcp_stack: Callable[..., Path], stack: Path, sm: Client, canary: str) -> None:
    engine.apply(stack)
    gcp_stack(SECRETS.split("- name: payments/session-key")[0])
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments__session-key", "delete", [])]
    names = [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": f"projects/{PROJECT}"})]
    assert sorted(names) == ["cloudsync-fingerprint-key-payments", "payments__db-password"]
    assert engine.plan(stack).changes() == []
    assert_no_canary(canary, outcome.rendered())


def test_old_versions_beyond_keep_versions_are_disabled_never_destroyed(
        gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = gcp_stack(SECRETS.split("- name: payments/session-key")[0], target_extra=", keep_versions: 2")
    for i in range(4):
        monkeypatch.setenv("DB_PASSWORD", f"{canary}-{i}")
        outcome = engine.apply(stack)
        assert_no_canary(canary, outcome.rendered())
    assert versions(sm, DB) == {1: "DISABLED", 2: "DISABLED", 3: "ENABLED", 4: "ENABLED"}
    assert engine.plan(stack).changes() == []


def test_user_managed_replication_and_regional_secrets(
        gcp_stack: Callable[..., Path], gcp: FakeSecretManager, sm: Client, tmp_path: Path) -> None:
    secrets = "- name: app/token\n  targets: [gcp-prod]\n  value: {generate: {length: 16}}\n"
    replicated = gcp_stack(secrets, target_extra=", replication: [us-east1, europe-west1]", root=tmp_path / "a")
    engine.apply(replicated)
    token = sm.get_secret(name=f"projects/{PROJECT}/secrets/app__token")
    assert [r.location for r in token.replication.user_managed.replicas] == ["us-east1", "europe-west1"]

    regional = gcp_stack(secrets, target_extra=", location: us-east1", root=tmp_path / "b", stack="regional")
    engine.apply(regional)
    listed = sm.list_secrets(request={"parent": f"projects/{PROJECT}/locations/us-east1"})
    assert sorted(s.name.rsplit("/", 1)[1] for s in listed) == ["app__token", "cloudsync-fingerprint-key-regional"]
    assert engine.plan(regional).changes() == []

"""Readers against IAM's normalised policies: no SetIamPolicy that changes nothing.

The fake returns policies the way IAM keeps them (bindings merged and sorted by role,
members sorted), not in the order cloudsync sent them. A client that compares what it
would send with what it read, in order, would rewrite every policy with another binding
sorting after the accessor one; these tests count the SetIamPolicy calls that reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import secretmanager

from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

Client = secretmanager.SecretManagerServiceClient
DB = f"projects/{PROJECT}/secrets/payments__db-password"
API = f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"
WORKER = f"serviceAccount:worker@{PROJECT}.iam.gserviceaccount.com"
VIEWER = "user:auditor@example.com"

SECRET = """\
- name: payments/db-password
  targets: [gcp-prod]
  labels: {env: prod}
  value: {env: DB_PASSWORD}
  readers: [worker, api]
"""


def bindings(sm: Client) -> list[tuple[str, list[str]]]:
    return [(b.role, list(b.members)) for b in sm.get_iam_policy(request={"resource": DB}).bindings]


@pytest.fixture
def stack(gcp_stack: Callable[..., Path], sm: Client, canary: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The secret applied with two readers, then a viewer binding added by someone else."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = gcp_stack(SECRET)
    engine.apply(root)
    policy = sm.get_iam_policy(request={"resource": DB})
    policy.bindings.add(role="roles/secretmanager.viewer", members=[VIEWER])
    sm.set_iam_policy(request={"resource": DB, "policy": policy})
    assert bindings(sm) == [("roles/secretmanager.secretAccessor", [API, WORKER]),
                            ("roles/secretmanager.viewer", [VIEWER])]
    return root


def test_an_unchanged_plan_makes_no_set_iam_policy_call(stack: Path, gcp: FakeSecretManager, sm: Client) -> None:
    gcp.calls.clear()
    outcome = engine.apply(stack)
    assert outcome.changes() == [] and gcp.calls["SetIamPolicy"] == 0
    assert outcome.plan.real_changes == [] and gcp.calls["GetIamPolicy"] == 1  # read once, never rewritten


def test_changes_other_than_readers_leave_the_policy_alone(stack: Path, gcp: FakeSecretManager, sm: Client,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (stack / "cloudsync.yaml").write_text((stack / "cloudsync.yaml").read_text().replace("env: prod", "env: live"))
    monkeypatch.setenv("DB_PASSWORD", "rotated-" + "x" * 16)
    gcp.calls.clear()
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["value", "labels"])]
    assert gcp.calls["SetIamPolicy"] == 0


def test_a_reader_change_writes_the_policy_once_and_keeps_the_other_binding(
        stack: Path, gcp: FakeSecretManager, sm: Client) -> None:
    (stack / "cloudsync.yaml").write_text((stack / "cloudsync.yaml").read_text().replace("[worker, api]", "[api]"))
    gcp.calls.clear()
    outcome = engine.apply(stack)
    assert outcome.changes() == [("payments/db-password", "update", ["access"])]
    assert gcp.calls["SetIamPolicy"] == 1
    assert bindings(sm) == [("roles/secretmanager.secretAccessor", [API]), ("roles/secretmanager.viewer", [VIEWER])]
    gcp.calls.clear()
    assert engine.apply(stack).changes() == [] and gcp.calls["SetIamPolicy"] == 0


def test_a_lost_set_iam_policy_response_is_not_written_twice(stack: Path, gcp: FakeSecretManager,
                                                             sm: Client) -> None:
    (stack / "cloudsync.yaml").write_text((stack / "cloudsync.yaml").read_text().replace("[worker, api]", "[api]"))
    gcp.lose("SetIamPolicy")  # it lands, the answer does not: the retry carries a stale etag
    gcp.calls.clear()
    engine.apply(stack)
    assert bindings(sm) == [("roles/secretmanager.secretAccessor", [API]), ("roles/secretmanager.viewer", [VIEWER])]
    assert gcp.calls["SetIamPolicy"] == 2  # the landed one, and the retry IAM refused (ABORTED)
    assert engine.plan(stack).changes() == []


def test_a_create_that_finds_its_secret_made_meanwhile_does_not_rewrite_an_equal_policy(
        gcp_stack: Callable[..., Path], gcp: FakeSecretManager, sm: Client, canary: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = gcp_stack(SECRET)

    def meanwhile() -> None:  # another apply of this stack lands first; an auditor is granted after it
        engine.apply(root)
        policy = sm.get_iam_policy(request={"resource": DB})
        policy.bindings.add(role="roles/secretmanager.viewer", members=[VIEWER])
        sm.set_iam_policy(request={"resource": DB, "policy": policy})
        gcp.calls.clear()

    outcome = engine.plan_then_apply(root, meanwhile)
    assert outcome.changes() == [("payments/db-password", "create", ["value", "access"])]
    assert outcome.report is not None and outcome.report.ok
    assert gcp.calls["SetIamPolicy"] == 0  # the readers were already right, in IAM's own order
    assert bindings(sm) == [("roles/secretmanager.secretAccessor", [API, WORKER]),
                            ("roles/secretmanager.viewer", [VIEWER])]

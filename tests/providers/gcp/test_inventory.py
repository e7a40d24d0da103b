"""Plans without per-secret reads: Cloud Asset Inventory's index, confirmed by direct reads.

Every test drives the real clients over gRPC against the fake, whose asset index trails the
store by ``index_lag`` seconds on the fake's clock (``advance`` moves it, nobody sleeps).
Call counts come from the fake's own request log (``gcp.calls``): they are what the quota
sees, and the user-visible contract of docs/providers/gcp.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.cloud import secretmanager
from google.iam.v1 import policy_pb2

from cloudsync.providers.access import Via
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

Client = secretmanager.SecretManagerServiceClient
OUTSIDER = "user:mallory@example.com"
LAG = 10 * 60  # the fake index trails the store by ten minutes
WINDOW = 31 * 60  # past cloudsync's default lag window (30 minutes): the index is trusted again
PLAIN = [f"svc{i}" for i in range(4)]  # four secrets without declared readers


def secrets_yaml() -> str:
    text = "- name: app/with-readers\n  targets: [gcp-prod]\n  value: {generate: {length: 24}}\n  readers: [api]\n"
    text += "- name: app/also-readers\n  targets: [gcp-prod]\n  value: {generate: {length: 24}}\n  readers: [worker]\n"
    for name in PLAIN:
        text += f"- name: app/{name}\n  targets: [gcp-prod]\n  value: {{generate: {{length: 24}}}}\n"
    return text


def full(name: str) -> str:
    return f"projects/{PROJECT}/secrets/{name.replace('/', '__')}"


@pytest.fixture
def stack(gcp_stack: Callable[..., Path]) -> Path:
    return gcp_stack(secrets_yaml())


def grant(sm: Client, name: str, member: str) -> None:
    policy = sm.get_iam_policy(request={"resource": full(name)})
    policy.bindings.append(policy_pb2.Binding(role="roles/secretmanager.secretAccessor", members=[member]))
    sm.set_iam_policy(request={"resource": full(name), "policy": policy})


def readers_via_secret(outcome: engine.Outcome, name: str) -> set[str]:
    scan = outcome.run.access["gcp-prod"]
    return {r.principal for r in scan.readers_of(name.replace("/", "__")) if r.via is Via.SECRET}


def plan_calls(outcome: engine.Outcome) -> dict[str, int]:
    return {k: v for k, v in outcome.calls.items() if v}


def settled(gcp: FakeSecretManager, stack: Path) -> None:
    """Applied long ago: older than the lag window, and the index has caught up."""
    engine.apply(stack)
    gcp.advance(WINDOW)
    gcp.calls.clear()


# An unchanged plan of 6 old secrets, 2 declaring readers: the listing, one page of each sweep,
# the 2 declared policies, and the access scan's project policy. No GetSecretVersion at all.
STEADY = {"ListSecrets": 1, "Assets.SearchAllIamPolicies": 1, "Assets.ListAssets": 1, "GetIamPolicy": 2,
          "Projects.GetIamPolicy": 1}


def test_an_unchanged_plan_reads_directly_only_the_secrets_that_declare_readers(
        stack: Path, gcp: FakeSecretManager) -> None:
    settled(gcp, stack)
    outcome = engine.plan(stack)
    assert outcome.changes() == []
    assert plan_calls(outcome) == STEADY
    assert gcp.calls == STEADY  # what the service saw: the same


def test_the_sweeps_follow_every_page(stack: Path, gcp: FakeSecretManager) -> None:
    settled(gcp, stack)
    gcp.max_page_size = 2  # 7 versions (6 secrets and the fingerprint key, 1 each) in pages of 2
    outcome = engine.plan(stack)
    assert outcome.changes() == []
    assert outcome.calls["Assets.ListAssets"] == 4 and outcome.calls["Assets.SearchAllIamPolicies"] == 1
    assert outcome.calls["GetIamPolicy"] == 2 and "GetSecretVersion" not in outcome.calls


def test_a_grant_added_out_of_band_where_no_readers_are_declared_is_found(
        stack: Path, gcp: FakeSecretManager, sm: Client) -> None:
    settled(gcp, stack)
    grant(sm, "app/svc2", OUTSIDER)
    gcp.advance(60)  # the index (no lag here) has it
    outcome = engine.plan(stack)
    assert readers_via_secret(outcome, "app/svc2") == {OUTSIDER}
    assert outcome.changes() == [("app/svc2", "update", ["access"])]  # no readers declared: apply revokes it
    # The index's hit is confirmed with one direct read: 2 declared + 1 hit.
    assert outcome.calls["GetIamPolicy"] == 3


def test_an_out_of_band_version_is_found_and_confirmed(stack: Path, gcp: FakeSecretManager, sm: Client) -> None:
    settled(gcp, stack)
    sm.add_secret_version(request={"parent": full("app/svc1"), "payload": {"data": b"written-by-hand"}})
    outcome = engine.plan(stack)
    assert [(s, a) for s, a, _ in outcome.changes()] == [("app/svc1", "update")]
    assert any("changed outside cloudsync (version 2 is current, cloudsync wrote 1)" in line
               for change in outcome.plan.real_changes for line in change.details)
    assert outcome.calls["GetSecretVersion"] == 1  # the index's hit, confirmed; nothing else read


def test_a_version_added_inside_the_lag_window_after_cloudsyncs_own_write_is_found(
        stack: Path, gcp: FakeSecretManager, sm: Client, gcp_stack: Callable[..., Path]) -> None:
    settled(gcp, stack)
    gcp.index_lag(LAG)
    # cloudsync writes version 2 (a rotation: new generator settings), then someone adds version
    # 3 a minute later. The index still shows version 1 for ten minutes.
    changed = secrets_yaml().replace("- name: app/svc3\n  targets: [gcp-prod]\n  value: {generate: {length: 24}}",
                                     "- name: app/svc3\n  targets: [gcp-prod]\n  value: {generate: {length: 32}}")
    stack = gcp_stack(changed)
    engine.apply(stack)
    gcp.advance(60)
    sm.add_secret_version(request={"parent": full("app/svc3"), "payload": {"data": b"written-by-hand"}})
    gcp.advance(60)
    gcp.calls.clear()
    outcome = engine.plan(stack)
    # The index (version 1) disagrees with the record (2): read directly, version 3 is found.
    assert any("version 3 is current, cloudsync wrote 2" in line
               for change in outcome.plan.real_changes for line in change.details)
    assert outcome.calls["GetSecretVersion"] == 1


def test_a_secret_created_inside_the_lag_window_is_read_directly(
        stack: Path, gcp: FakeSecretManager, sm: Client, gcp_stack: Callable[..., Path]) -> None:
    settled(gcp, stack)
    gcp.index_lag(LAG)
    stack = gcp_stack(secrets_yaml() + "- name: app/new\n  targets: [gcp-prod]\n  value: {generate: {length: 24}}\n")
    engine.apply(stack)
    grant(sm, "app/new", OUTSIDER)  # a minute after cloudsync created it: the index knows neither
    gcp.advance(60)
    outcome = engine.plan(stack)
    assert readers_via_secret(outcome, "app/new") == {OUTSIDER}


def test_an_old_secret_granted_inside_the_lag_window_shows_once_the_window_passes(
        stack: Path, gcp: FakeSecretManager, sm: Client, gcp_stack: Callable[..., Path]) -> None:
    # The documented limit: on an old secret that declares no readers, a grant younger than the
    # index's lag is not seen by the next plan; the first plan after the lag sees it, and
    # `inventory: false` sees it at once.
    settled(gcp, stack)
    gcp.index_lag(LAG)
    grant(sm, "app/svc0", OUTSIDER)
    gcp.advance(60)
    assert readers_via_secret(engine.plan(stack), "app/svc0") == set()
    direct = gcp_stack(secrets_yaml(), target_extra=", inventory: false")
    assert readers_via_secret(engine.plan(direct), "app/svc0") == {OUTSIDER}
    gcp.advance(LAG)
    assert readers_via_secret(engine.plan(stack), "app/svc0") == {OUTSIDER}


def test_inventory_false_reads_every_owned_secret_directly(gcp: FakeSecretManager, gcp_stack: Callable[..., Path]) -> None:
    stack = gcp_stack(secrets_yaml(), target_extra=", inventory: false")
    settled(gcp, stack)
    outcome = engine.plan(stack)
    assert plan_calls(outcome) == {"ListSecrets": 1, "GetIamPolicy": 6, "GetSecretVersion": 6,
                                   "Projects.GetIamPolicy": 1}


@pytest.mark.parametrize("denied", ["Assets.SearchAllIamPolicies", "Assets.ListAssets"])
def test_without_the_index_a_plan_reads_directly_and_says_why(
        denied: str, stack: Path, gcp: FakeSecretManager, sm: Client) -> None:
    settled(gcp, stack)
    grant(sm, "app/svc2", OUTSIDER)
    gcp.deny(denied)
    outcome = engine.plan(stack)
    assert outcome.changes() == [("app/svc2", "update", ["access"])]
    assert readers_via_secret(outcome, "app/svc2") == {OUTSIDER}
    assert outcome.calls["GetIamPolicy"] == 6 and outcome.calls["GetSecretVersion"] == 6
    notes = outcome.run.access["gcp-prod"].notes
    permission = {"Assets.SearchAllIamPolicies": "cloudasset.assets.searchAllIamPolicies",
                  "Assets.ListAssets": "cloudasset.assets.listResource"}[denied]
    assert any(permission in note and "read directly" in note for note in notes), notes


def test_a_create_costs_two_writes_and_one_more_with_readers(stack: Path, gcp: FakeSecretManager) -> None:
    outcome = engine.apply(stack)
    writes = {m: n for m, n in gcp.calls.items()
              if m in ("CreateSecret", "AddSecretVersion", "UpdateSecret", "SetIamPolicy")}
    # 6 secrets, the stack's fingerprint key and the apply lock (no version); 2 declare readers.
    # No UpdateSecret: the value record of version 1 rides on CreateSecret (before: one UpdateSecret more per value).
    assert writes == {"CreateSecret": 8, "AddSecretVersion": 7, "SetIamPolicy": 2}
    assert engine.plan(stack).changes() == []
    assert outcome.changes()


def test_revoking_every_reader_drops_the_label_that_made_plans_read_the_policy(
        stack: Path, gcp: FakeSecretManager, sm: Client, gcp_stack: Callable[..., Path]) -> None:
    settled(gcp, stack)
    assert sm.get_secret(name=full("app/with-readers")).labels["cloudsync-readers"] == "granted"
    revoked = gcp_stack(secrets_yaml().replace("  readers: [api]\n", ""))
    assert engine.apply(revoked).changes() == [("app/with-readers", "update", ["access"])]
    assert "cloudsync-readers" not in sm.get_secret(name=full("app/with-readers")).labels
    assert engine.plan(revoked).changes() == []
    gcp.advance(WINDOW)
    assert engine.plan(revoked).calls["GetIamPolicy"] == 1  # only app/also-readers' now


def test_refresh_full_reads_every_owned_secret_directly(gcp: FakeSecretManager, stack: Path, sm: Client) -> None:
    """`plan --refresh full` / `drift --refresh full`: as inventory: false, for one run."""
    from cloudsync.config.loader import load_stack
    from cloudsync.plan.build import build_plan, open_session

    settled(gcp, stack)
    gcp.index_lag(LAG)
    grant(sm, "app/svc1", OUTSIDER)  # the index cannot show it yet
    gcp.advance(60)
    assert engine.plan(stack).changes() == []
    loaded = load_stack(stack)
    with open_session(loaded, full_refresh=True) as session:
        run = build_plan(session, list(loaded.config.targets))
        calls = {k: v for k, v in session.provider("gcp-prod").api_calls.items() if v}
    assert [(c.secret, c.action.value) for c in run.plan.real_changes] == [("app/svc1", "update")]
    assert calls == {"ListSecrets": 1, "GetIamPolicy": 6, "GetSecretVersion": 6, "Projects.GetIamPolicy": 1}

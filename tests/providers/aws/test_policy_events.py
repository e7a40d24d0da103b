"""The default access_drift (changed): out-of-band grants found through CloudTrail's event history.

Grants are added with boto3's put_resource_policy against moto, which does not move
LastChangedDate (tests/providers/aws/test_moto_differences.py): only the event feed
(tests/fakes/cloudtrail.py) can reveal them. Calls are counted on the wire (the fault proxy's
log of every request it forwards), as in test_policy_gating.py.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.providers.aws.remote import SYNCED_TAG
from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import (
    READER_A,
    Engine,
    an_hour_ago,
    assert_applied,
    changes,
    stack_yaml,
    tags_of,
)

INTRUDER = "arn:aws:iam::123456789012:role/intruder"
COUNT, READERS = 30, 3


def _secrets(count: int = COUNT, readers: range | set[int] = range(READERS), tier_b: set[int] | None = None) -> str:
    return "".join(f"- name: payments/s{i:03d}\n  targets: [aws-prod]\n"
                   f"  labels: {{tier: {'b' if i in (tier_b or set()) else 'a'}}}\n  value: {{env: DB_PASSWORD}}\n"
                   + ("  readers: [payments-api]\n" if i in readers else "") for i in range(count))


def _grant(sm: Any, secret_id: str, principal: str = INTRUDER) -> None:
    """An out-of-band grant; ``secret_id`` as the caller writes it (name, ARN or partial ARN)."""
    sm.put_resource_policy(SecretId=secret_id, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "secretsmanager:GetSecretValue",
         "Resource": "*"}]}))


def _plan(proxy: FaultProxy, engine: Engine) -> tuple[PlanRun, Counter[str]]:
    before = len(proxy.seen)
    run = engine.plan()
    return run, Counter(proxy.seen[before:])


@pytest.fixture
def applied(engine: Engine, aws: MotoServer, proxy: FaultProxy, sm: Any, canary: str,
            monkeypatch: pytest.MonkeyPatch) -> Engine:
    """30 secrets (3 with a reader) applied with the default settings, written an hour ago."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(proxy.url, _secrets()))
    assert_applied(engine.apply()[1])
    an_hour_ago(sm, [f"payments/s{i:03d}" for i in range(COUNT)])
    return engine


def test_an_unchanged_plan_with_the_default_settings_costs_exactly(engine: Engine, aws: MotoServer,
                                                                   proxy: FaultProxy, canary: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    proxy.max_results = 10  # pages of 10, as AWS's pages of 100 at 10x the size
    engine.write(stack_yaml(proxy.url, _secrets()))  # no access_drift: the default
    assert_applied(engine.apply()[1])

    run, calls = _plan(proxy, engine)
    assert changes(run) == []
    pages = math.ceil((COUNT + 1) / 10)  # the stack's secrets and its fingerprint key
    # "" is IAM's GetAccountAuthorizationDetails (the access scan); GetSecretValue the fingerprint key.
    assert calls == Counter({"ListSecrets": pages, "GetResourcePolicy": READERS, "LookupEvents": 1,
                             "GetSecretValue": 1, "": 1})
    (lookup,) = aws.trail.lookups[-1:]
    assert lookup["LookupAttributes"] == [{"AttributeKey": "EventName", "AttributeValue": "PutResourcePolicy"}]


def test_a_grant_shows_once_cloudtrail_delivers_its_event(applied: Engine, aws: MotoServer, proxy: FaultProxy,
                                                          sm: Any) -> None:
    aws.trail.lag = 300.0  # CloudTrail has not delivered the event yet
    _grant(sm, "payments/s010")
    run, calls = _plan(proxy, applied)
    assert changes(run) == [] and calls["GetResourcePolicy"] == READERS

    aws.trail.lag = 0.0  # delivered: the next plan reads that policy and shows the grant
    run, calls = _plan(proxy, applied)
    assert calls["GetResourcePolicy"] == READERS + 1
    assert changes(run) == [("aws-prod:payments/s010", "update", ("access",))]

    assert_applied(applied.apply()[1])  # removed; the new mark explains the event from now on
    run, calls = _plan(proxy, applied)
    assert changes(run) == [] and calls["GetResourcePolicy"] == READERS
    assert sm.get_resource_policy(SecretId="payments/s010").get("ResourcePolicy") is None


def test_events_name_secrets_by_arn_and_partial_arn(applied: Engine, proxy: FaultProxy, sm: Any) -> None:
    arn = sm.describe_secret(SecretId="payments/s011")["ARN"]
    _grant(sm, arn)
    partial = sm.describe_secret(SecretId="payments/s012")["ARN"].rsplit("-", 1)[0]  # without AWS's suffix
    _grant(sm, partial)
    run, calls = _plan(proxy, applied)
    assert calls["GetResourcePolicy"] == READERS + 2
    assert sorted(changes(run)) == [("aws-prod:payments/s011", "update", ("access",)),
                                    ("aws-prod:payments/s012", "update", ("access",))]


def test_other_services_events_are_ignored_and_long_feeds_are_paged(applied: Engine, aws: MotoServer,
                                                                    proxy: FaultProxy, sm: Any) -> None:
    _grant(sm, "payments/s013")  # the oldest event of the page walk
    for _ in range(60):  # CloudWatch Logs' PutResourcePolicy, named like one of ours
        aws.trail.inject("PutResourcePolicy", "payments/s014", source="logs.amazonaws.com")
    run, calls = _plan(proxy, applied)
    assert calls["LookupEvents"] == 2  # 61 events, 50 a page
    assert calls["GetResourcePolicy"] == READERS + 1  # s013; s014 is not read
    assert changes(run) == [("aws-prod:payments/s013", "update", ("access",))]


def test_cloudsyncs_own_policy_writes_cost_no_reads(applied: Engine, aws: MotoServer, proxy: FaultProxy,
                                                    sm: Any) -> None:
    # s000 declares a reader; a Deny is added beside it (read anyway: it declares readers).
    policy = json.loads(sm.get_resource_policy(SecretId="payments/s000")["ResourcePolicy"])
    policy["Statement"].append({"Sid": "NoDeletes", "Effect": "Deny", "Principal": {"AWS": READER_A},
                                "Action": "secretsmanager:DeleteSecret", "Resource": "*"})
    sm.put_resource_policy(SecretId="payments/s000", ResourcePolicy=json.dumps(policy))
    # The declaration drops its reader: cloudsync puts a policy holding only the Deny.
    applied.write(stack_yaml(proxy.url, _secrets(readers={1, 2})))
    before = len(aws.trail.events)
    assert_applied(applied.apply()[1])
    own = [e for e in aws.trail.events[before:] if e.name == "PutResourcePolicy"]
    assert [e.resource for e in own] == ["payments/s000"]
    run, calls = _plan(proxy, applied)
    assert changes(run) == []
    assert calls["GetResourcePolicy"] == READERS - 1  # s001 and s002; s000's own event explained by its mark


def test_without_the_event_history_every_policy_is_read_and_the_plan_says_why(applied: Engine, aws: MotoServer,
                                                                              proxy: FaultProxy, sm: Any) -> None:
    aws.trail.refuse = "AccessDeniedException"
    _grant(sm, "payments/s020")
    run, calls = _plan(proxy, applied)
    assert calls["GetResourcePolicy"] == COUNT
    assert changes(run) == [("aws-prod:payments/s020", "update", ("access",))]
    notes = run.access["aws-prod"].notes
    assert any("cloudtrail:LookupEvents" in note and "read directly" in note for note in notes), notes


def test_a_throttled_event_history_falls_back_too(applied: Engine, proxy: FaultProxy,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cloudsync.providers.aws.calls.READ_BACKOFF", 0.001)
    monkeypatch.setattr("cloudsync.providers.aws.calls.THROTTLE_PAUSE", 0.001)
    proxy.fail("LookupEvents", "ThrottlingException", times=100)
    run, calls = _plan(proxy, applied)
    assert changes(run) == [] and calls["GetResourcePolicy"] == COUNT
    assert any("throttling" in note for note in run.access["aws-prod"].notes)


def test_refresh_full_reads_every_policy(applied: Engine, aws: MotoServer, proxy: FaultProxy, sm: Any) -> None:
    aws.trail.lag = 3600.0  # a grant the feed cannot show yet
    _grant(sm, "payments/s021")
    assert changes(applied.plan()) == []
    before = len(proxy.seen)
    stack = load_stack(applied.root)
    with open_session(stack, full_refresh=True) as session:
        run = build_plan(session, list(stack.config.targets))
    calls = Counter(proxy.seen[before:])
    assert calls["GetResourcePolicy"] == COUNT and calls["LookupEvents"] == 0
    assert changes(run) == [("aws-prod:payments/s021", "update", ("access",))]


def test_an_estate_without_marks_converges_to_cheap_plans(engine: Engine, aws: MotoServer, proxy: FaultProxy,
                                                          sm: Any, canary: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(proxy.url, _secrets(), target_extra=", access_drift: all"))  # before marks
    assert_applied(engine.apply()[1])
    assert SYNCED_TAG not in tags_of(sm, "payments/s010")
    _grant(sm, "payments/s029")  # drift the upgrade must keep showing until it is fixed

    engine.write(stack_yaml(proxy.url, _secrets()))  # upgraded: the default mode
    run, calls = _plan(proxy, engine)
    assert calls["GetResourcePolicy"] == COUNT and calls["LookupEvents"] == 0  # nothing marked yet
    assert changes(run) == [("aws-prod:payments/s029", "update", ("access",))]

    # An apply with something to do (here a label on s005) stamps the marks of the secrets it found in sync.
    engine.write(stack_yaml(proxy.url, _secrets(tier_b={5})))
    assert_applied(engine.apply()[1])
    assert tags_of(sm, "payments/s010")[SYNCED_TAG].count("@") == 1  # bookkeeping: <now>@<read time>
    run, calls = _plan(proxy, engine)
    assert changes(run) == []
    assert calls["GetResourcePolicy"] == READERS and calls["LookupEvents"] == 1


def test_no_value_leaks_from_a_plan_that_uses_the_event_history(cli: Any, aws: MotoServer, aws_env: dict[str, str],
                                                                  sm: Any, canary: str, tmp_path: Path) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    # Owner label and rotation: the built-in policy pack accepts it (these runs test the provider).
    declared = _secrets(5, range(1)).replace("labels: {tier: a}", "labels: {env: dev, owner: team-payments}\n"
                                             "  rotation: 30d")
    (root / "cloudsync.yaml").write_text(stack_yaml(aws.url, declared))
    env = {**aws_env, "DB_PASSWORD": canary, "CLOUDSYNC_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    applied: CliResult = cli("apply", "--auto-approve", cwd=root, env=env)
    assert applied.code == 0, applied.output
    aws.trail.lag = 3600.0
    _grant(sm, "payments/s003")
    auto = cli("plan", "--detailed-exitcode", "--format", "json", cwd=root, env=env)
    full = cli("drift", "--refresh", "full", "--format", "json", cwd=root, env=env)
    assert auto.code == 0, auto.output  # not delivered yet
    assert full.code == 2 and "payments/s003" in full.stdout, full.output
    assert_no_canary(canary, applied.output, auto.output, full.output)
    assert not files_containing(tmp_path, canary)

"""access_drift: changed (the default) — resource policies read for declared readers and for secrets AWS
reports changed since cloudsync last wrote them (LastChangedDate here; CloudTrail's event history in
test_policy_events.py); list_filter: stack. Calls are counted on the wire (the
fault proxy's log of every request it forwards), not by the adapter."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cloudsync.providers.aws.remote import SYNCED_TAG
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import READER_A, Engine, an_hour_ago, assert_applied, changes, stack_yaml, tags_of

INTRUDER = "arn:aws:iam::123456789012:role/intruder"


def _secrets(count: int, with_readers: int) -> str:
    return "".join(f"- name: payments/s{i:03d}\n  description: declared\n  targets: [aws-prod]\n"
                   "  value: {env: DB_PASSWORD}\n"
                   + ("  readers: [payments-api]\n" if i < with_readers else "") for i in range(count))


def _grant(sm: Any, name: str, principal: str) -> None:
    arn = sm.describe_secret(SecretId=name)["ARN"]
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "secretsmanager:GetSecretValue",
         "Resource": arn}]}))


def _wire_calls(proxy: FaultProxy, engine: Engine) -> tuple[Any, Counter[str]]:
    before = len(proxy.seen)
    run = engine.plan()
    return run, Counter(proxy.seen[before:])


@pytest.mark.parametrize(("mode", "count", "readers"), [("all", 30, 3), ("changed", 30, 3), ("declared", 30, 3)])
def test_a_plan_of_an_unchanged_stack_costs_exactly(engine: Engine, aws: MotoServer, proxy: FaultProxy,
                                                    canary: str, monkeypatch: pytest.MonkeyPatch, mode: str,
                                                    count: int, readers: int) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    proxy.max_results = 10  # pages of 10, as AWS's pages of 100 at 10x the size
    engine.write(stack_yaml(proxy.url, _secrets(count, readers), target_extra=f", access_drift: {mode}"))
    _run, report = engine.apply()
    assert_applied(report)

    run, calls = _wire_calls(proxy, engine)
    assert changes(run) == []
    pages = math.ceil((count + 1) / 10)  # the stack's secrets and its fingerprint key
    policies = count if mode == "all" else readers
    # The fingerprint key's value is read once; "" is IAM's GetAccountAuthorizationDetails (the
    # access scan, a query-protocol call without an X-Amz-Target header).
    feed = {"LookupEvents": 1} if mode == "changed" else {}  # CloudTrail, for the secrets it vouches for
    assert calls == Counter({"ListSecrets": pages, "GetResourcePolicy": policies, "GetSecretValue": 1, "": 1,
                             **feed})


def test_gating_sees_a_grant_added_with_any_other_change(engine: Engine, aws: MotoServer, proxy: FaultProxy,
                                                         sm: Any, canary: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(proxy.url, _secrets(3, 1), target_extra=", access_drift: changed"))
    _run, report = engine.apply()
    assert_applied(report)
    for i in range(3):
        an_hour_ago(sm, [f"payments/s{i:03d}"])

    # Someone edits s001 in the console: a description and a grant. AWS moves LastChangedDate.
    sm.update_secret(SecretId="payments/s001", Description="edited by hand")
    _grant(sm, "payments/s001", INTRUDER)
    run, calls = _wire_calls(proxy, engine)
    assert calls["GetResourcePolicy"] == 2  # s000 declares readers; s001 changed since cloudsync wrote it
    assert changes(run) == [("aws-prod:payments/s001", "update", ("description", "access"))]

    # Applied, the grant is gone and the mark is new: the next plan reads only declared readers again.
    _run, report = engine.apply()
    assert_applied(report)
    run, calls = _wire_calls(proxy, engine)
    assert changes(run) == [] and calls["GetResourcePolicy"] == 1
    assert sm.get_resource_policy(SecretId="payments/s001").get("ResourcePolicy") is None


def test_readers_dropped_from_a_declaration_are_still_compared(engine: Engine, aws: MotoServer, sm: Any,
                                                                canary: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, _secrets(2, 1), target_extra=", access_drift: changed"))
    _run, report = engine.apply()
    assert_applied(report)
    assert tags_of(sm, "payments/s000")[SYNCED_TAG].endswith("r")  # cloudsync left readers on it
    an_hour_ago(sm, ["payments/s000"])

    engine.write(stack_yaml(aws.url, _secrets(2, 0), target_extra=", access_drift: changed"))
    assert changes(engine.plan()) == [("aws-prod:payments/s000", "update", ("access",))]


def test_a_secret_without_a_mark_is_read(engine: Engine, aws: MotoServer, proxy: FaultProxy, sm: Any,
                                         canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets written before the mark existed (or under another mode) are read until rewritten."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(proxy.url, _secrets(2, 0), target_extra=", access_drift: all"))
    _run, report = engine.apply()
    assert_applied(report)
    _grant(sm, "payments/s001", READER_A)

    engine.write(stack_yaml(proxy.url, _secrets(2, 0), target_extra=", access_drift: changed"))
    run, calls = _wire_calls(proxy, engine)
    assert calls["GetResourcePolicy"] == 2
    assert changes(run) == [("aws-prod:payments/s001", "update", ("access",))]


def test_a_filtered_listing_pages_only_the_stacks_secrets(engine: Engine, aws: MotoServer, proxy: FaultProxy,
                                                          sm: Any, canary: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    for i in range(25):  # another team's secrets in the shared account
        sm.create_secret(Name=f"other/s{i:03d}", SecretString="x", Tags=[{"Key": "team", "Value": "other"}])
    sm.create_secret(Name="payments/s002", SecretString="x")  # declared, but not ours: a conflict
    proxy.max_results = 10
    engine.write(stack_yaml(proxy.url, _secrets(3, 0), target_extra=", list_filter: stack"))
    run, calls = _wire_calls(proxy, engine)
    assert calls["ListSecrets"] == 1 and calls["DescribeSecret"] == 3  # three would-be creates confirmed
    assert [c[:2] for c in changes(run)] == [("aws-prod:payments/s000", "create"),
                                             ("aws-prod:payments/s001", "create")]
    assert any("payments/s002" in str(d) and "not managed by cloudsync" in str(d) for d in run.plan.diagnostics)

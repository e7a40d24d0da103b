"""Out-of-band changes are seen (without reading values); secrets the stack does not own are never touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloudsync.plan.actions import Reason
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.base import CreateRequest, NotOwnedError, ProviderError, ReadQuery, SecretState, ValueRecord
from cloudsync.values.secret import SecretValue
from tests.conftest import assert_no_canary
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import (
    DB_PASSWORD,
    READER_A,
    READER_B,
    Engine,
    assert_applied,
    changes,
    provider_via,
    stack_yaml,
    tags_of,
)

ADDRESS = "aws-prod:payments/db-password"
NAME = "payments/db-password"


@pytest.fixture
def created(engine: Engine, aws: MotoServer, canary: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    assert_applied(engine.apply()[1])
    return engine


def test_out_of_band_value_write_is_seen_without_reading_values(created: Engine, sm: Any, canary: str) -> None:
    sm.put_secret_value(SecretId=NAME, SecretString="written-by-someone-else")
    run, calls = created.calls(metadata_only=True)
    assert changes(run) == [(ADDRESS, "update", ("value",))]
    assert "GetSecretValue" not in calls
    assert "changed outside cloudsync" in run.plan.changes[0].details[0]

    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("value",))]
    assert_applied(report)
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == canary
    assert changes(created.plan()) == []


def test_out_of_band_policy_grant_is_drift_and_is_reverted(created: Engine, sm: Any) -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [READER_A, READER_B]}, "Action": "secretsmanager:*",
         "Resource": "*"},
        {"Sid": "NoDeleteFromOutside", "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret",
         "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "123456789012"}}},
    ]}
    sm.put_resource_policy(SecretId=NAME, ResourcePolicy=json.dumps(policy))
    run = created.plan()
    assert changes(run) == [(ADDRESS, "update", ("access",))]
    assert f"-{READER_B}" in run.plan.changes[0].details[0]
    assert run.plan.changes[0].before is not None
    assert run.plan.changes[0].before.other_access == ("Deny secretsmanager:DeleteSecret to *",)

    assert_applied(created.apply()[1])
    statements = json.loads(sm.get_resource_policy(SecretId=NAME)["ResourcePolicy"])["Statement"]
    assert [s.get("Sid") for s in statements] == ["NoDeleteFromOutside", "CloudsyncReaders"]  # Deny kept
    assert statements[1]["Principal"]["AWS"] == [READER_A]
    assert changes(created.plan()) == []


def test_out_of_band_tag_and_description_edits_are_drift(created: Engine, sm: Any) -> None:
    sm.tag_resource(SecretId=NAME, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "extra", "Value": "x"}])
    sm.update_secret(SecretId=NAME, Description="edited in the console")
    assert changes(created.plan()) == [(ADDRESS, "update", ("labels", "description"))]
    assert_applied(created.apply()[1])
    tags = tags_of(sm, NAME)
    assert tags["env"] == "prod" and "extra" not in tags
    assert changes(created.plan()) == []


def test_aws_system_tags_are_not_labels(created: Engine, sm: Any) -> None:
    sm.tag_resource(SecretId=NAME, Tags=[{"Key": "aws:cloudformation:stack-name", "Value": "x"}])
    assert changes(created.plan()) == []


def test_secret_not_owned_is_reported_and_never_touched(engine: Engine, aws: MotoServer, sm: Any,
                                                        canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sm.create_secret(Name=NAME, SecretString="theirs", Tags=[{"Key": "team", "Value": "other"}])
    sm.create_secret(Name="payments/other-stack", SecretString="theirs", Tags=[
        {"Key": "managed-by", "Value": "cloudsync"}, {"Key": "cloudsync-stack", "Value": "billing"}])
    before = sm.describe_secret(SecretId=NAME)
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    run, report = engine.apply()
    assert changes(run) == []  # no create over it, no delete of the other stack's secret
    (diag,) = run.plan.diagnostics
    assert "not managed by cloudsync" in diag.message and "never changes" in diag.message
    assert report.results == []
    after = sm.describe_secret(SecretId=NAME)
    assert after["VersionIdsToStages"] == before["VersionIdsToStages"]
    assert tags_of(sm, NAME) == {"team": "other"}
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == "theirs"
    assert sm.describe_secret(SecretId="payments/other-stack").get("DeletedDate") is None


def test_adapter_refuses_to_create_over_a_foreign_secret(provider: AwsProvider, sm: Any, canary: str) -> None:
    sm.create_secret(Name=NAME, SecretString="theirs")
    state = SecretState(name=NAME, labels={}, description=None, expires_at=None, readers=frozenset())
    request = CreateRequest(reasons=frozenset({Reason.VALUE}), stack="payments", name=NAME, state=state,
                            value=SecretValue(canary), record=ValueRecord(fingerprint="f" * 32), token="t" * 40)
    with pytest.raises(ProviderError) as raised:
        provider.apply(request)
    assert isinstance(raised.value, NotOwnedError) and raised.value.code == "NotOwned"
    assert "already exists and is not managed by cloudsync" in raised.value.message
    assert_no_canary(canary, str(raised.value), raised.value.message)
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == "theirs"
    assert "Tags" not in sm.describe_secret(SecretId=NAME)


def test_listing_lag_is_confirmed_before_planning(created: Engine, proxy: FaultProxy, tmp_path: Path,
                                                  sm: Any) -> None:
    """AWS's ListSecrets is eventually consistent: a missing or stale entry is checked with DescribeSecret."""
    sm.create_secret(Name="payments/old", Tags=[{"Key": "managed-by", "Value": "cloudsync"},
                                                {"Key": "cloudsync-stack", "Value": "payments"}])
    ghost = next(s for s in sm.list_secrets()["SecretList"] if s["Name"] == "payments/old")
    sm.delete_secret(SecretId="payments/old", ForceDeleteWithoutRecovery=True)

    def stale(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The new secret not listed yet; a force-deleted one still listed.
        return [e for e in entries if e["Name"] != NAME] + [json.loads(json.dumps(ghost, default=str))]

    proxy.list_filter = stale
    for adapter in provider_via(proxy, tmp_path):
        query = ReadQuery(stack="payments", declared=frozenset({NAME}), access=frozenset({NAME}))
        found = {s.name: s for s in adapter.read(query)}
        assert NAME in found and found[NAME].owner == "payments"  # not a create
        assert "payments/old" not in found  # not a delete
        assert found[NAME].readers == frozenset({READER_A})
        assert adapter.api_calls["DescribeSecret"] == 2


def test_an_unmanaged_secret_is_changed_only_when_adopted(engine: Engine, aws: MotoServer, sm: Any, canary: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sm.create_secret(Name=NAME, SecretString="theirs", Tags=[{"Key": "team", "Value": "x"}])
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD + "  adopt: true\n"))
    run, report = engine.apply()
    assert changes(run)[0][1] == "update" and "ownership" in changes(run)[0][2]
    assert_applied(report)
    tags = tags_of(sm, NAME)
    assert tags["managed-by"] == "cloudsync" and tags["cloudsync-stack"] == "payments" and "team" not in tags
    assert changes(engine.plan()) == []

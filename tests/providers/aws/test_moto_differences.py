"""Each place moto differs from AWS, named: what moto does, and how the adapter handles AWS's behaviour.

The AWS behaviours are reproduced with the fault proxy where moto cannot produce them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.secretsmanager.models import secretsmanager_backends

from cloudsync.plan.actions import Reason
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.actions import ACTIONS
from cloudsync.providers.aws.remote import LABEL_MISSING
from cloudsync.providers.base import CreateRequest, NotFoundError, ReadQuery, SecretState, ValueRecord
from cloudsync.values.secret import SecretValue
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import DB_PASSWORD, Engine, assert_applied, changes, provider_via, stack_yaml

NAME = "payments/db-password"
QUERY = ReadQuery(stack="payments", declared=frozenset({NAME}), access=frozenset({NAME}))
SCHEDULED = "You can't create this secret because a secret with this name is already scheduled for deletion."


def _create_request(value: SecretValue, token: str) -> CreateRequest:
    state = SecretState(name=NAME, labels={"env": "prod"}, description="d", expires_at=None, readers=frozenset())
    return CreateRequest(reasons=frozenset({Reason.VALUE}), stack="payments", name=NAME, state=state,
                         value=value, record=ValueRecord(fingerprint="a" * 32, key_id="k" * 12), token=token)


def _scheduled_owned_secret(adapter: AwsProvider, sm: Any) -> None:
    adapter.apply(_create_request(SecretValue("first"), "1" * 40))
    sm.delete_secret(SecretId=NAME, RecoveryWindowInDays=7)


def test_create_on_a_name_scheduled_for_deletion(provider: AwsProvider, proxy: FaultProxy, sm: Any,
                                                 tmp_path: Path) -> None:
    """moto raises ResourceExistsException; AWS raises InvalidRequestException. Both end in a restore."""
    _scheduled_owned_secret(provider, sm)
    with pytest.raises(ClientError) as raised:
        sm.create_secret(Name=NAME)
    assert raised.value.response["Error"]["Code"] == "ResourceExistsException"  # moto; AWS: InvalidRequestException

    record = provider.apply(_create_request(SecretValue("second"), "2" * 40))  # moto's answer
    assert record is not None and record.version is not None
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == "second"

    sm.delete_secret(SecretId=NAME, RecoveryWindowInDays=7)
    proxy.fail("CreateSecret", "InvalidRequestException", message=SCHEDULED)  # AWS's answer
    for adapter in provider_via(proxy, tmp_path):
        adapter.apply(_create_request(SecretValue("third"), "3" * 40))
    assert proxy.seen[:3] == ["CreateSecret", "DescribeSecret", "RestoreSecret"]
    assert sm.describe_secret(SecretId=NAME).get("DeletedDate") is None
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == "third"


def test_put_value_on_a_scheduled_secret(engine: Engine, aws: MotoServer, proxy: FaultProxy, sm: Any,
                                         canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts PutSecretValue on a secret scheduled for deletion; AWS refuses it. Restore comes first."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    assert_applied(engine.apply()[1])
    sm.delete_secret(SecretId=NAME, RecoveryWindowInDays=7)
    sm.put_secret_value(SecretId=NAME, SecretString="moto-accepts-this")  # AWS: InvalidRequestException

    engine.write(stack_yaml(proxy.url, DB_PASSWORD))
    run, report = engine.apply()
    assert changes(run) == [("aws-prod:" + NAME, "restore", ("value",))]
    assert_applied(report)
    writes = [op for op in proxy.seen if op in ("RestoreSecret", "PutSecretValue")]
    assert writes == ["RestoreSecret", "PutSecretValue"]


def test_out_of_band_put_drops_the_staging_label_in_moto(provider: AwsProvider, sm: Any) -> None:
    """moto moves *every* label off the old current version on a put; AWS keeps custom labels there."""
    provider.apply(_create_request(SecretValue("mine"), "1" * 40))
    (mine,) = sm.describe_secret(SecretId=NAME)["VersionIdsToStages"]
    sm.put_secret_value(SecretId=NAME, SecretString="theirs")
    stages = sm.describe_secret(SecretId=NAME)["VersionIdsToStages"]
    assert stages[mine] == ["AWSPREVIOUS"]  # AWS: ["AWSPREVIOUS", "cloudsync"]
    (remote,) = provider.read(QUERY)
    assert remote.record is not None and remote.record.version == LABEL_MISSING and remote.value_drifted

    # AWS's state: the label still on the version cloudsync wrote.
    sm.update_secret_version_stage(SecretId=NAME, VersionStage="cloudsync", MoveToVersionId=mine)
    (remote,) = provider.read(QUERY)
    assert remote.record is not None and remote.record.version == mine and remote.value_drifted


def test_update_secret_cannot_clear_a_description_in_moto(provider: AwsProvider, sm: Any) -> None:
    """moto ignores Description="" (keeps the old text); AWS clears it. The adapter sends ""."""
    provider.apply(_create_request(SecretValue("v"), "1" * 40))
    sm.update_secret(SecretId=NAME, Description="")
    assert sm.describe_secret(SecretId=NAME)["Description"] == "d"  # AWS: no description


def test_validate_resource_policy_is_not_implemented_in_moto(sm: Any) -> None:
    """moto answers ValidateResourcePolicy with a 500; the adapter never calls it."""
    sm.create_secret(Name=NAME, SecretString="x")
    with pytest.raises(ClientError) as raised:
        sm.validate_resource_policy(SecretId=NAME, ResourcePolicy="{}")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "ValidateResourcePolicy" not in ACTIONS


def test_block_public_policy_is_not_enforced_by_moto(sm: Any) -> None:
    """moto stores a public policy despite BlockPublicPolicy=True; AWS refuses it (so would an apply)."""
    sm.create_secret(Name=NAME, SecretString="x")
    public = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    sm.put_resource_policy(SecretId=NAME, ResourcePolicy=json.dumps(public), BlockPublicPolicy=True)
    assert sm.get_resource_policy(SecretId=NAME)["ResourcePolicy"]


def test_a_resource_policy_change_does_not_move_last_changed_date_in_moto(sm: Any) -> None:
    """moto moves LastChangedDate only on create, PutSecretValue and UpdateSecret; AWS documents it as
    "the last date and time that this secret was modified in any way" without saying whether a
    resource policy (or tag) change counts, and no AWS page or emulator here can settle it. That is
    why ``access_drift: changed`` (the default) does not rest on it alone: CloudTrail's event history
    shows every PutResourcePolicy (docs/providers/aws.md). The event tests rely on this behaviour
    (a grant only the feed can reveal); the gating tests make LastChangedDate move with an UpdateSecret."""
    sm.create_secret(Name=NAME, SecretString="x")
    before = sm.describe_secret(SecretId=NAME)["LastChangedDate"]
    backend = secretsmanager_backends["123456789012"]["us-east-1"].secrets[NAME]
    backend.last_changed_date = int(backend.last_changed_date) - 60  # so that a move is visible at once
    sm.put_resource_policy(SecretId=NAME, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    sm.tag_resource(SecretId=NAME, Tags=[{"Key": "k", "Value": "v"}])
    after = sm.describe_secret(SecretId=NAME)["LastChangedDate"]
    assert after.timestamp() == before.timestamp() - 60


def test_moto_has_no_cloudtrail_event_history(aws: MotoServer) -> None:
    """moto 5.2.5 implements CloudTrail's trails but not LookupEvents (its own app answers 500); the
    test server serves it from the Secrets Manager writes that reach moto (tests/fakes/cloudtrail.py)."""
    from moto.cloudtrail.responses import CloudTrailResponse

    assert not hasattr(CloudTrailResponse, "lookup_events")
    trail = boto3.client("cloudtrail", region_name="us-east-1", endpoint_url=aws.url)
    assert trail.lookup_events(MaxResults=1)["Events"] == []  # the fake's answer


def test_batch_get_secret_value_errors_have_aws_shape_but_moto_fails_a_batch_for_a_secret_without_value(
        provider: AwsProvider, aws: MotoServer, sm: Any, tmp_path: Path) -> None:
    """BatchGetSecretValue's ``Errors`` entries are AWS's ``APIErrorType`` in moto too (``SecretId``,
    ``ErrorCode``, ``Message``; a missing name is ``ResourceNotFoundException``, a scheduled one
    ``InvalidRequestException``). The difference: a secret with no current value fails moto's whole
    call with ResourceNotFoundException, where AWS reports it in ``Errors`` like any other secret.
    The adapter reads every secret of such a batch on its own; AWS's answer needs no fallback."""
    from tests.providers.aws.batch_proxy import BatchProxy

    sm.create_secret(Name="a", SecretString="value-a")
    sm.create_secret(Name="gone", SecretString="x")
    sm.delete_secret(SecretId="gone", RecoveryWindowInDays=7)
    answer = sm.batch_get_secret_value(SecretIdList=["a", "missing", "gone"])
    assert [v["Name"] for v in answer["SecretValues"]] == ["a"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in answer["Errors"]] == [
        ("missing", "ResourceNotFoundException"), ("gone", "InvalidRequestException")]
    assert all(set(e) == {"SecretId", "ErrorCode", "Message"} for e in answer["Errors"])

    sm.create_secret(Name="empty")  # no version: no value
    with pytest.raises(ClientError) as raised:  # AWS: an Errors entry for "empty", "a" answered
        sm.batch_get_secret_value(SecretIdList=["a", "empty"])
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"

    found = provider.read_values(["a", "empty"])  # moto's answer: each read on its own
    assert found["a"] == SecretValue("value-a") and isinstance(found["empty"], NotFoundError)
    assert provider.api_calls["BatchGetSecretValue"] == 1 and provider.api_calls["GetSecretValue"] == 2

    aws_like = BatchProxy(aws.url)  # AWS's answer, on the wire
    aws_like.secret_errors["empty"] = ("ResourceNotFoundException",
                                       "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
    try:
        for adapter in provider_via(aws_like, tmp_path):
            found = adapter.read_values(["a", "empty"])
    finally:
        aws_like.close()
    assert found["a"] == SecretValue("value-a") and isinstance(found["empty"], NotFoundError)
    assert aws_like.seen == ["BatchGetSecretValue"]

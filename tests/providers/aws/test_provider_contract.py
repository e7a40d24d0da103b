"""The Provider contract, called directly on AwsProvider: values, fingerprint key, deletes, replicas."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudsync.plan.actions import Action, Reason
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.remote import AwsFacts
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.base import (
    NotFoundError,
    ProviderContext,
    ProviderError,
    ReadQuery,
    RemoteSecret,
    SecretState,
    ValueRecord,
    WriteRequest,
    facts_of,
    write_request,
)
from cloudsync.values.secret import SecretValue
from tests.conftest import assert_no_canary
from tests.fakes.moto_server import MotoServer

NAME = "payments/api-key"


def _state(readers: frozenset[str] | None = frozenset()) -> SecretState:
    return SecretState(name=NAME, labels={"env": "prod"}, description=None, expires_at=None, readers=readers)


def _request(action: str, value: SecretValue | None, token: str, *, before: RemoteSecret | None = None,
             reasons: frozenset[Reason] = frozenset({Reason.VALUE})) -> WriteRequest:
    return write_request(Action(action), reasons=reasons, stack="payments", name=NAME,
                         state=None if action == "delete" else _state(), value=value,
                         record=ValueRecord(fingerprint="f" * 32, key_id="k" * 12), before=before, token=token)


def _read(adapter: AwsProvider) -> dict[str, RemoteSecret]:
    query = ReadQuery(stack="payments", declared=frozenset({NAME}), access=frozenset({NAME}))
    return {s.name: s for s in adapter.read(query)}


def test_binary_and_text_values_round_trip(provider: AwsProvider, canary: str) -> None:
    record = provider.apply(_request("create", SecretValue(canary), "1" * 40))
    assert provider.read_value(NAME) == SecretValue(canary)
    assert record is not None and _read(provider)[NAME].record == record
    binary = SecretValue(b"\xff\x00\xfe" + canary.encode())
    remote = _read(provider)[NAME]
    provider.apply(_request("update", binary, "2" * 40, before=remote))
    assert provider.read_value(NAME) == binary


def test_read_value_of_a_missing_secret_is_not_found(provider: AwsProvider, sm: Any) -> None:
    with pytest.raises(NotFoundError) as raised:
        provider.read_value("nope")
    assert raised.value.code == "ResourceNotFoundException" and not raised.value.transient
    sm.create_secret(Name="empty")  # exists, but no version holds AWSCURRENT yet
    with pytest.raises(NotFoundError):
        provider.read_value("empty")


def test_read_value_of_a_scheduled_secret_is_an_error_not_absence(provider: AwsProvider, sm: Any) -> None:
    sm.create_secret(Name="gone-soon", SecretString="x")
    sm.delete_secret(SecretId="gone-soon", RecoveryWindowInDays=7)
    with pytest.raises(ProviderError) as raised:
        provider.read_value("gone-soon")
    assert not isinstance(raised.value, NotFoundError) and raised.value.code == "InvalidRequestException"


def test_fingerprint_key_is_created_once_and_read_back(provider: AwsProvider, sm: Any) -> None:
    assert provider.fingerprint_key(create=False) is None
    key = provider.fingerprint_key(create=True)
    assert key is not None and len(key) == 64
    assert provider.fingerprint_key(create=False) == key
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="cloudsync-fingerprint-key-payments")


def test_a_retried_write_is_idempotent(provider: AwsProvider, sm: Any, canary: str) -> None:
    first = provider.apply(_request("create", SecretValue(canary), "1" * 40))
    again = provider.apply(_request("create", SecretValue(canary), "1" * 40))  # same change, retried
    assert first is not None and again is not None and first.version == again.version
    assert len(sm.describe_secret(SecretId=NAME)["VersionIdsToStages"]) == 1


def test_deleting_what_is_gone_succeeds(provider: AwsProvider, canary: str) -> None:
    provider.apply(_request("create", SecretValue(canary), "1" * 40))
    before = _read(provider)[NAME]
    provider.apply(_request("delete", None, "2" * 40, before=before))
    assert _read(provider)[NAME].deleted
    provider.apply(_request("delete", None, "2" * 40, before=before))  # retried: already scheduled
    provider.apply(_request("delete", None, "3" * 40, before=None))
    gone = RemoteSecret(name=NAME, owner="payments", managed=True, purge_on_delete=True)
    provider.apply(_request("delete", None, "4" * 40, before=gone))
    provider.apply(_request("delete", None, "5" * 40, before=gone))  # force-deleted already
    assert NAME not in _read(provider)


def test_revision_moves_with_every_change(aws: MotoServer, tmp_path: Path, sm: Any, canary: str) -> None:
    # --refresh full: the policy put out of band here follows cloudsync's write within the same
    # seconds, which the default mode does not tell apart from that write (EVENT_SLACK).
    config = AwsTarget(provider="aws", region="us-east-1", endpoint=aws.url)
    provider = AwsProvider("aws-prod", config, ProviderContext(stack="payments", root=tmp_path, full_refresh=True))
    provider.apply(_request("create", SecretValue(canary), "1" * 40))
    seen = {_read(provider)[NAME].revision}
    assert _read(provider)[NAME].revision in seen  # stable while nothing changes
    sm.put_resource_policy(SecretId=NAME, ResourcePolicy='{"Version":"2012-10-17","Statement":[]}')
    seen.add(_read(provider)[NAME].revision)
    sm.tag_resource(SecretId=NAME, Tags=[{"Key": "k", "Value": "v"}])
    seen.add(_read(provider)[NAME].revision)
    sm.put_secret_value(SecretId=NAME, SecretString="other")
    seen.add(_read(provider)[NAME].revision)
    assert len(seen) == 4
    provider.close()


@pytest.fixture
def west(aws: MotoServer, tmp_path: Path) -> Iterator[AwsProvider]:
    config = AwsTarget(provider="aws", region="us-west-2", endpoint=aws.url)
    adapter = AwsProvider("aws-west", config, ProviderContext(stack="payments", root=tmp_path))
    yield adapter
    adapter.close()


def test_replicas_are_managed_from_their_primary_region_only(aws: MotoServer, tmp_path: Path,
                                                             west: AwsProvider, canary: str) -> None:
    config = AwsTarget(provider="aws", region="us-east-1", endpoint=aws.url, replica_regions=["us-west-2"])
    east = AwsProvider("aws-prod", config, ProviderContext(stack="payments", root=tmp_path))
    try:
        east.apply(_request("create", SecretValue(canary), "1" * 40))
    finally:
        east.close()
    (replica,) = west.read(ReadQuery(stack="payments", declared=frozenset(), access=frozenset()))
    assert replica.name == NAME and replica.owner is None
    facts = facts_of(replica, AwsFacts)
    assert facts is not None and facts.replica_of == "us-east-1"


def test_sdk_debug_logs_never_carry_values(provider: AwsProvider, canary: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore").setLevel(logging.DEBUG)
        try:
            provider.apply(_request("create", SecretValue(canary), "1" * 40))
            assert provider.read_value(NAME) == SecretValue(canary)
        finally:
            logging.getLogger("botocore").setLevel(logging.NOTSET)
    assert "PutSecretValue" in caplog.text  # botocore did log at DEBUG
    assert_no_canary(canary, caplog.text)

"""AWS's failure modes, injected by a proxy in front of moto: throttling, 5xx, access, credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.base import ProviderError, ReadQuery
from tests.conftest import assert_no_canary
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import DB_PASSWORD, Engine, assert_applied, changes, provider_via, stack_yaml

NAME = "payments/db-password"
QUERY = ReadQuery(stack="payments", declared=frozenset({NAME}), access=frozenset({NAME}))


@pytest.fixture
def proxied(engine: Engine, proxy: FaultProxy, canary: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A stack whose target talks to moto through the fault proxy."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    # The engine does not retry creating the target's own fingerprint key; keep it out of the faults.
    monkeypatch.setenv("CLOUDSYNC_FINGERPRINT_KEY", "k" * 32)
    engine.write(stack_yaml(proxy.url, DB_PASSWORD))
    return engine


@pytest.fixture
def no_sdk_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn botocore's own retries off, so cloudsync's retry layers are what is tested (quickly)."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setattr("cloudsync.providers.aws.calls.READ_BACKOFF", 0.001)


@pytest.fixture
def adapter(proxy: FaultProxy, tmp_path: Path) -> Iterator[AwsProvider]:
    yield from provider_via(proxy, tmp_path)


def test_throttled_writes_are_retried_by_apply_and_converge(proxied: Engine, proxy: FaultProxy, sm: Any,
                                                            canary: str, no_sdk_retries: None) -> None:
    proxy.fail("PutSecretValue", times=4)
    delays: list[float] = []
    _run, report = proxied.apply(sleep=delays.append)
    assert_applied(report)
    (result,) = [r for r in report.results if r.change.secret == NAME]
    assert result.attempts == 5 and len(delays) == 4
    # Each retry re-ran CreateSecret (found it owned) and PutSecretValue with the same token: one version.
    assert proxy.seen.count("CreateSecret") >= 5
    assert len(sm.describe_secret(SecretId=NAME)["VersionIdsToStages"]) == 1
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == canary
    assert changes(proxied.plan()) == []


def test_retry_after_is_honoured(proxied: Engine, proxy: FaultProxy, no_sdk_retries: None) -> None:
    assert_applied(proxied.apply()[1])
    proxied.write(proxied.root.joinpath("cloudsync.yaml").read_text().replace("env: prod", "env: prd"))
    proxy.fail("TagResource", times=1, headers={"Retry-After": "0.75"})
    delays: list[float] = []
    assert_applied(proxied.apply(sleep=delays.append)[1])
    assert delays == [0.75]


def test_throttled_reads_survive_sdk_retries(proxied: Engine, proxy: FaultProxy) -> None:
    proxy.fail("ListSecrets", times=1)
    proxy.fail("DescribeSecret", times=1)
    run = proxied.plan()
    assert changes(run)[0][1] == "create"
    assert proxy.injected == ["ListSecrets", "DescribeSecret"]


def test_throttled_reads_survive_cloudsync_retries(adapter: AwsProvider, proxy: FaultProxy,
                                                   no_sdk_retries: None) -> None:
    proxy.fail("ListSecrets", times=3)
    assert adapter.read(QUERY) == []
    assert adapter.api_calls["ListSecrets"] == 4


def test_server_errors_are_transient(no_sdk_retries: None, adapter: AwsProvider, proxy: FaultProxy) -> None:
    # no_sdk_retries first: the adapter must be built with botocore's retries already off.
    proxy.fail("ListSecrets", "InternalServiceError", status=500, times=10)
    with pytest.raises(ProviderError) as raised:
        adapter.read(QUERY)
    assert raised.value.transient and raised.value.code == "InternalServiceError"


def test_retries_run_out_with_the_code_named_and_no_value(proxied: Engine, proxy: FaultProxy, canary: str,
                                                          no_sdk_retries: None) -> None:
    proxy.fail("PutSecretValue", times=100)
    _run, report = proxied.apply()
    (result,) = [r for r in report.results if r.change.secret == NAME]
    assert result.outcome.value == "failed" and result.attempts == 6
    assert result.error is not None
    assert "[ThrottlingException]" in result.error and "PutSecretValue payments/db-password" in result.error
    assert_no_canary(canary, result.error)


def test_access_denied_names_the_missing_action(proxied: Engine, proxy: FaultProxy) -> None:
    proxy.fail("PutResourcePolicy", "AccessDeniedException", times=100,
               message="User: arn:aws:sts::123456789012:assumed-role/ci/cloudsync is not authorized")
    _run, report = proxied.apply()
    (result,) = [r for r in report.results if r.change.secret == NAME]
    assert result.outcome.value == "failed" and result.attempts == 1  # not retried
    assert result.error is not None and "secretsmanager:PutResourcePolicy" in result.error
    assert "cloudsync permissions --target aws-prod" in result.error


def test_expired_credentials_are_one_line_naming_the_target(proxied: Engine, proxy: FaultProxy) -> None:
    proxy.fail("ListSecrets", "ExpiredTokenException", times=10, message="The security token included in the "
                                                                          "request is expired")
    with pytest.raises(CloudsyncError) as raised:
        proxied.plan(metadata_only=True)
    (diag,) = raised.value.diagnostics
    assert "target aws-prod" in diag.message and "ExpiredTokenException" in diag.message
    assert "\n" not in diag.render()


def test_missing_credentials_fail_when_connecting(engine: Engine, aws: MotoServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(metadata_only=True)
    (diag,) = raised.value.diagnostics
    assert diag.message.startswith(f"target aws-prod ({aws.url}): connecting failed (credentials): "
                                   "no usable AWS credentials")
    assert diag.hint is not None and "AWS_PROFILE" in diag.hint and "aws sso login" in diag.hint


def test_unknown_profile_is_a_credentials_error(engine: Engine, aws: MotoServer) -> None:
    engine.write(stack_yaml(aws.url, DB_PASSWORD, target_extra=", profile: nope"))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(metadata_only=True)
    assert "profile 'nope'" in raised.value.diagnostics[0].message


def test_unreachable_endpoint_is_a_transient_error(engine: Engine, aws: MotoServer, no_sdk_retries: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine.write(stack_yaml("http://127.0.0.1:9", DB_PASSWORD))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(metadata_only=True)
    (diag,) = raised.value.diagnostics
    assert "http://127.0.0.1:9" in diag.message and "failed (network): ListSecrets: cannot reach the endpoint" in diag.message
    assert diag.hint is not None and "reachable" in diag.hint


@pytest.mark.parametrize("endpoint", ["http://10.1.2.3:4566", "http://secretsmanager.example.com", "ftp://x"])
def test_plain_http_is_refused_for_non_loopback_endpoints(engine: Engine, aws: MotoServer, endpoint: str) -> None:
    engine.write(stack_yaml(endpoint, DB_PASSWORD))
    with pytest.raises(CloudsyncError) as raised:
        engine.plan(metadata_only=True)
    (diag,) = raised.value.diagnostics  # refused when the files are loaded, where validate refuses it too
    assert (diag.file or "").endswith("cloudsync.yaml") and diag.line and "endpoint" in diag.message and diag.hint


def test_role_arn_is_assumed_through_sts(engine: Engine, aws: MotoServer, sm: Any, canary: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    role = "arn:aws:iam::111111111111:role/cloudsync-deployer"
    engine.write(stack_yaml(aws.url, DB_PASSWORD, target_extra=f", role_arn: \"{role}\""))
    assert_applied(engine.apply()[1])
    # moto keeps each account apart: the secret landed in the role's account, not the caller's.
    assert sm.list_secrets()["SecretList"] == []
    assert changes(engine.plan()) == []

"""access_drift: declared — resource policies read only for secrets that declare readers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import READER_A, Engine, assert_applied, changes, stack_yaml

SECRETS = """\
- name: payments/with-readers
  targets: [aws-prod]
  value: {env: DB_PASSWORD}
  readers: [payments-api]
- name: payments/no-readers-1
  targets: [aws-prod]
  value: {env: DB_PASSWORD}
- name: payments/no-readers-2
  targets: [aws-prod]
  value: {env: DB_PASSWORD}
"""


def _grant(sm: Any, name: str, principal: str) -> None:
    arn = sm.describe_secret(SecretId=name)["ARN"]
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "secretsmanager:GetSecretValue",
         "Resource": arn}]}))


@pytest.mark.parametrize(("mode", "policy_reads", "sees_grant_on_undeclared"),
                         [("all", 3, True), ("declared", 1, False)])
def test_policy_reads_follow_the_access_drift_setting(engine: Engine, aws: MotoServer, sm: Any, canary: str,
                                                      monkeypatch: pytest.MonkeyPatch, mode: str, policy_reads: int,
                                                      sees_grant_on_undeclared: bool) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, SECRETS, target_extra=f", access_drift: {mode}"))
    _run, report = engine.apply()
    assert_applied(report)

    run, calls = engine.calls()
    assert changes(run) == []
    assert calls.get("GetResourcePolicy", 0) == policy_reads
    assert calls["ListSecrets"] == 1

    # An out-of-band grant is seen on a secret with readers in both modes...
    _grant(sm, "payments/with-readers", "arn:aws:iam::123456789012:role/intruder")
    # ...and on a secret that declares none only when every owned policy is read.
    _grant(sm, "payments/no-readers-1", READER_A)
    expected = [("aws-prod:payments/with-readers", "update", ("access",))]
    if sees_grant_on_undeclared:
        expected.insert(0, ("aws-prod:payments/no-readers-1", "update", ("access",)))
    assert changes(engine.plan()) == expected

"""Least privilege on AWS: each operation works with exactly the IAM actions ``cloudsync
permissions`` prints, and fails naming any one taken away (moto's IAM enforcement).

moto evaluates the ``Action`` of the caller's policies, not ``Resource`` (Secrets Manager
calls are checked against ``*``) nor ``Condition`` (the stack's ownership tags): the printed
policy's actions are granted on ``*``, and the resource and tag scoping stay unverified here
(named in docs/providers/aws.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import CliResult
from tests.fakes.moto_iam import IamMoto
from tests.fakes.moto_server import ENV, UNSET
from tests.providers.contract.drive import Driver
from tests.providers.contract.privilege import Scenario, check_operation

TARGET = "aws-prod"
PRINCIPALS = {"api": "arn:aws:iam::123456789012:role/payments-api",
              "worker": "arn:aws:iam::123456789012:role/billing-worker"}

# Declared everywhere without readers and left alone: the default access_drift asks CloudTrail
# about it (cloudtrail:LookupEvents) instead of reading its policy.
QUIET = """\
- name: payments/quiet
  targets: [T]
  value: {generate: {length: 24}}
"""
BEFORE = """\
- name: payments/rotating
  description: first
  targets: [T]
  labels: {env: prod, team: payments}
  value: {env: ROTATING}
  readers: [api]
- name: payments/lonely
  targets: [T]
  value: {generate: {length: 24}}
  rotation: {every: 30d, grace: 0}
  readers: [api]
- name: payments/retired
  targets: [T]
  value: {generate: {length: 24}}
""" + QUIET
REVIVED = """\
- name: payments/revived
  targets: [T]
  value: {generate: {length: 24}}
"""
PLANNED = """\
- name: payments/planned
  targets: [T]
  value: {generate: {length: 24}}
"""
# A value copied from a secret the stack does not declare: read in bulk (BatchGetSecretValue).
UPSTREAM = "vendor/upstream-token"
COPIED = f"""\
- name: payments/copied
  targets: [T]
  value: {{from: {{target: {TARGET}, name: {UPSTREAM}}}}}
"""
# What apply is asked to do, each with its own call: a new value (PutSecretValue), a new
# reader (PutResourcePolicy), a label removed (UntagResource) and one added (TagResource), a
# description (UpdateSecret), no readers left (DeleteResourcePolicy), a scheduled secret
# declared again (RestoreSecret), a new secret (CreateSecret), one no longer declared
# (DeleteSecret), the replica moved from eu-west-1 to us-west-2 (ReplicateSecretToRegions,
# RemoveRegionsFromReplication), and a new generated value with grace 0, whose previous version
# is retired at once (UpdateSecretVersionStage).
AFTER = """\
- name: payments/rotating
  description: second
  targets: [T]
  labels: {env: prod}
  value: {env: ROTATING}
  readers: [api, worker]
- name: payments/lonely
  targets: [T]
  labels: {tier: gold}
  value: {generate: {length: 32}}
  rotation: {every: 30d, grace: 0}
  readers: []
""" + REVIVED + PLANNED + QUIET + COPIED


def _driver(server: IamMoto, root: Path, replica: str) -> Driver:
    target = f'{{provider: aws, region: us-east-1, endpoint: "{server.url}", replica_regions: [{replica}]}}'
    return Driver(root, "aws", TARGET, target, PRINCIPALS)


def printed(cli: Callable[..., CliResult], root: Path) -> dict[str, set[str]]:
    """Operation -> every IAM action of the policy printed for it."""
    result = cli("permissions", "--target", TARGET, "-C", str(root))
    assert result.code == 0, result.output
    policies = json.loads(result.stdout)["policies"]
    needed: dict[str, set[str]] = {}
    for operation, document in policies.items():
        actions: set[str] = set()
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
        needed[operation] = actions
    assert set(needed) == {"plan-metadata", "plan", "apply"}, result.stdout
    return needed


@pytest.fixture
def scenario(iam_moto: IamMoto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)
    root = tmp_path / "stack"

    def prepare(operation: str) -> Driver:
        iam_moto.open_up()
        for key, value in ENV.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ROTATING", "first-value-of-the-rotating-secret")
        driver = _driver(iam_moto, root, "eu-west-1")
        driver.declare(BEFORE + REVIVED)
        driver.applied()
        # revived: scheduled for deletion, as an apply without its declaration would leave it
        sm: Any = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=iam_moto.url)
        sm.remove_regions_from_replication(SecretId="payments/revived", RemoveReplicaRegions=["eu-west-1"])
        sm.delete_secret(SecretId="payments/revived", RecoveryWindowInDays=7)
        sm.create_secret(Name=UPSTREAM, SecretString="value-of-the-upstream-token")
        sm.close()
        if operation == "apply":
            monkeypatch.setenv("ROTATING", "second-value-of-the-rotating-secret")
            driver = _driver(iam_moto, root, "us-west-2")
            driver.declare(AFTER)
        else:  # a plan confirms what the listing suggests: a create, a delete, a restore
            driver.declare(BEFORE.replace("- name: payments/retired", "- name: payments/gone") + REVIVED + PLANNED
                           + COPIED)
        return driver

    def grant(actions: Iterable[str]) -> None:
        key, secret = iam_moto.enforce(actions)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)

    # Without cloudtrail:LookupEvents a plan reads every owned secret's policy instead, and without
    # BatchGetSecretValue each value on its own; either way it says so.
    return Scenario(prepare, grant, scan=frozenset({"iam:GetAccountAuthorizationDetails"}),
                    fallback=frozenset({"cloudtrail:LookupEvents", "secretsmanager:BatchGetSecretValue"}),
                    serves_only={"secretsmanager:ListSecretVersionIds": ("access --versions",)})


@pytest.mark.parametrize("operation", ["plan-metadata", "plan", "apply"])
def test_exactly_the_printed_permissions_suffice_and_each_is_needed(
        operation: str, scenario: Scenario, cli: Callable[..., CliResult], iam_moto: IamMoto,
        tmp_path: Path) -> None:
    _driver(iam_moto, tmp_path / "stack", "eu-west-1").declare(BEFORE)
    check_operation(scenario, printed(cli, tmp_path / "stack"), operation)

"""End to end: the installed ``cloudsync`` command against moto, in a subprocess like CI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import READER_B, stack_yaml

Cli = Callable[..., CliResult]
NAME = "payments/db-password"
# A declaration the built-in policy pack accepts, so these runs test the provider, not the policies.
DECLARATION = """\
- name: payments/db-password
  description: Postgres password
  targets: [aws-prod]
  labels: {env: dev, owner: team-payments}
  value: {env: DB_PASSWORD}
  rotation: 30d
  readers: [payments-api]
"""


@pytest.fixture
def stack(aws: MotoServer, write_stack: Callable[..., Path]) -> Path:
    return write_stack(stack_yaml(aws.url, DECLARATION, target_extra=", kms_key_id: alias/payments"))


def test_apply_then_plan_is_clean_and_nothing_leaks(cli: Cli, stack: Path, aws_env: dict[str, str], canary: str,
                                                    sm: Any) -> None:
    env = {**aws_env, "DB_PASSWORD": canary}
    outputs = []
    first = cli("plan", "--detailed-exitcode", cwd=stack, env=env)
    outputs.append(first.output)
    assert first.code == 2, first.output
    assert "aws-prod:payments/db-password" in first.stdout

    applied = cli("-v", "apply", "--auto-approve", cwd=stack, env=env)
    outputs.append(applied.output)
    assert applied.code == 0, applied.output
    assert "Apply complete: 1 applied, 0 failed" in applied.stdout
    assert sm.get_secret_value(SecretId=NAME)["SecretString"] == canary

    again = cli("plan", "--detailed-exitcode", "--format", "json", cwd=stack, env=env)
    outputs.append(again.output)
    assert again.code == 0, again.output
    body = json.loads(again.stdout)
    assert body["changes"] == [] and body["summary"]["unchanged"] == 1

    assert_no_canary(canary, *outputs)
    assert files_containing(stack, canary) == []


def test_out_of_band_edit_makes_a_saved_plan_stale(cli: Cli, stack: Path, aws_env: dict[str, str], canary: str,
                                                   sm: Any) -> None:
    env = {**aws_env, "DB_PASSWORD": canary, "CLOUDSYNC_PLAN_KEY": "p" * 32}
    assert cli("apply", "--auto-approve", cwd=stack, env=env).code == 0
    (stack / "cloudsync.yaml").write_text((stack / "cloudsync.yaml").read_text().replace("env: dev", "env: test"))
    saved = cli("plan", "--out", "plan.json", cwd=stack, env=env)
    assert saved.code == 0, saved.output

    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": READER_B}, "Action": "secretsmanager:GetSecretValue",
         "Resource": "*"}]}
    sm.put_resource_policy(SecretId=NAME, ResourcePolicy=json.dumps(policy))
    refused = cli("apply", "plan.json", cwd=stack, env=env)
    assert refused.code == 1
    assert "stale" in refused.stderr and "aws-prod:payments/db-password changed" in refused.stderr
    assert_no_canary(canary, saved.output, refused.output)


def test_metadata_only_plan_needs_no_value_source(cli: Cli, stack: Path, aws_env: dict[str, str]) -> None:
    result = cli("plan", "--metadata-only", "--format", "json", cwd=stack, env=aws_env)  # DB_PASSWORD unset
    assert result.code == 0, result.output
    (change,) = json.loads(result.stdout)["changes"]
    assert change["action"] == "create"


def test_permissions_prints_a_least_privilege_policy_per_operation(cli: Cli, stack: Path) -> None:
    result = cli("permissions", "--target", "aws-prod", cwd=stack)
    assert result.code == 0, result.output
    body = json.loads(result.stdout)
    assert body["provider"] == "aws" and body["stack"] == "payments" and body["region"] == "us-east-1"
    policies = body["policies"]
    assert set(policies) == {"plan-metadata", "plan", "apply"}

    def actions(operation: str) -> set[str]:
        return {a for s in policies[operation]["Statement"] for a in
                ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    assert actions("plan-metadata") == {"secretsmanager:ListSecrets", "secretsmanager:DescribeSecret",
                                        "secretsmanager:GetResourcePolicy", "secretsmanager:ListSecretVersionIds",
                                        "cloudtrail:LookupEvents", "iam:GetAccountAuthorizationDetails"}
    assert "secretsmanager:GetSecretValue" in actions("plan")
    assert not {a for a in actions("plan") if a.startswith("secretsmanager:Put")}
    assert {"secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret",
            "kms:GenerateDataKey"} <= actions("apply")
    assert any("not an ARN" in note for note in body["notes"])  # kms_key_id is an alias here


def test_missing_credentials_are_one_line(cli: Cli, stack: Path, aws_env: dict[str, str]) -> None:
    env = {**aws_env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = cli("plan", "--metadata-only", cwd=stack, env=env)
    assert result.code == 1
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "target aws-prod" in lines[0] and "no usable AWS credentials" in lines[0]

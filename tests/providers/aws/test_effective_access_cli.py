"""Effective access end to end on AWS (moto): a broad grant added out of band shows in drift,
the access report (text, json, markdown, html), the plan and the built-in policy, and removing it
clears all of it. The installed ``cloudsync`` runs in a subprocess, as in CI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import READER_A, REGION

Cli = Callable[..., CliResult]
ADMIN_ROLE = "ops-admin"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
READ_ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "ReadEverySecret", "Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": "*"}]})


def stack_text(endpoint: str) -> str:
    # A prod secret the built-in pack accepts, so only the broad grant can fail it.
    return f"""\
version: 1
stack: payments
targets:
  aws-prod: {{provider: aws, region: {REGION}, endpoint: "{endpoint}"}}
principals:
  payments-api-prod: {{aws: "{READER_A}"}}
secrets:
  - name: payments/db-password
    description: Postgres password
    targets: [aws-prod]
    labels: {{env: prod, owner: team-payments}}
    value: {{env: DB_PASSWORD}}
    rotation: 30d
    expires: 90d
    deletion_protection: true
    readers: [payments-api-prod]
"""


@pytest.fixture
def iam(aws: MotoServer) -> Any:
    return boto3.client("iam", region_name=REGION, endpoint_url=aws.url)


@pytest.fixture
def stack(aws: MotoServer, write_stack: Callable[..., Path]) -> Path:
    return write_stack(stack_text(aws.url))


def test_a_broad_grant_is_seen_everywhere_and_cleared_when_removed(
        cli: Cli, stack: Path, aws_env: dict[str, str], canary: str, iam: Any, tmp_path: Path) -> None:
    env = {**aws_env, "DB_PASSWORD": canary}
    outputs: list[str] = []

    def run(*args: str) -> CliResult:
        result = cli(*args, cwd=stack, env=env)
        outputs.append(result.output)
        return result

    applied = run("apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert run("drift").code == 0

    clean = json.loads(run("access", "--format", "json").stdout)
    [secret] = clean["secrets"]
    assert [(r["name"], r["declared"], r["via"]) for r in secret["readers"]] == [("payments-api-prod", True, "secret")]
    assert secret["readers_complete"] is True and clean["summary"]["with_undeclared_readers"] == 0

    # Out of band: a role that may read every secret in the account.
    role = iam.create_role(RoleName=ADMIN_ROLE, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=ADMIN_ROLE, PolicyName="read-all", PolicyDocument=READ_ALL)

    drift = run("drift", "--format", "json")
    assert drift.code == 2, drift.output
    inherited = [d for d in json.loads(drift.stdout)["drifted"] if d["kind"] == "inherited"]
    assert [(d["address"], d["principal"], d["via"]) for d in inherited] == [
        ("aws-prod:payments/db-password", role, "account")]
    assert "never removes it" in inherited[0]["detail"]

    report = json.loads(run("access", "--format", "json").stdout)
    [secret] = report["secrets"]
    undeclared = [r for r in secret["readers"] if not r["declared"]]
    assert [(r["principal"], r["name"], r["via"], r["conditional"]) for r in undeclared] == [
        (role, None, "account", False)]
    assert "read-all" in undeclared[0]["grant"]
    assert report["summary"]["with_undeclared_readers"] == 1
    assert {p["principal"]: p["can_read"] for p in report["principals"]}[role] == ["aws-prod:payments/db-password"]

    blast = json.loads(run("access", "--principal", role, "--format", "json").stdout)
    assert [s["address"] for s in blast["secrets"]] == ["aws-prod:payments/db-password"]
    assert [p["principal"] for p in blast["principals"]] == [role]
    nothing = json.loads(run("access", "--principal", "arn:aws:iam::123456789012:role/nobody", "--format",
                             "json").stdout)
    assert nothing["secrets"] == []

    text = run("access")
    assert text.code == 0 and "UNDECLARED" in text.stdout and role in text.stdout
    markdown = run("access", "--format", "markdown").stdout
    assert "Undeclared readers (1)" in markdown and role in markdown
    page = tmp_path / "access.html"
    assert run("access", "--format", "html", "--out", str(page)).code == 0
    assert role in page.read_text(encoding="utf-8")

    plan = run("plan", "--format", "json")
    assert plan.code == 1, plan.output  # CS014 blocks a prod secret with an undeclared reader
    body = json.loads(plan.stdout)
    assert [(u["principal"], u["via"]) for u in body["undeclared_readers"]] == [(role, "account")]
    assert [(v["policy"], v["address"]) for v in body["policy"]["violations"]] == [
        ("CS014", "aws-prod:payments/db-password")]
    assert "Readers not declared (1)" in run("plan").stdout

    # A waiver with a reason and an expiry lets it through while the grant is being removed.
    (stack / "policies").mkdir()
    (stack / "policies" / "waivers.yaml").write_text(
        "waivers:\n  - policy: CS014\n    secrets: [payments/db-password]\n"
        "    reason: ops-admin read-all is being scoped down, ticket SEC-7\n    expires: 2099-01-01\n")
    waived = run("plan", "--format", "json")
    assert waived.code == 0, waived.output
    assert [v["policy"] for v in json.loads(waived.stdout)["policy"]["waived"]] == ["CS014"]
    (stack / "policies" / "waivers.yaml").unlink()

    iam.delete_role_policy(RoleName=ADMIN_ROLE, PolicyName="read-all")
    assert run("drift").code == 0
    after = json.loads(run("access", "--format", "json").stdout)
    assert after["summary"]["with_undeclared_readers"] == 0
    final = run("plan", "--format", "json", "--detailed-exitcode")
    assert final.code == 0, final.output
    assert json.loads(final.stdout)["undeclared_readers"] == []

    assert_no_canary(canary, *outputs, page.read_text(encoding="utf-8"))
    assert files_containing(stack, canary) == []


def test_a_target_that_opts_out_says_unknown_not_none(cli: Cli, aws: MotoServer, write_stack: Callable[..., Path],
                                                      aws_env: dict[str, str], iam: Any) -> None:
    stack = write_stack(stack_text(aws.url).replace(f'endpoint: "{aws.url}"', f'endpoint: "{aws.url}", '
                                                                               "access_scan: false"))
    env = {**aws_env, "DB_PASSWORD": "not-a-canary-value-here"}
    assert cli("apply", "--auto-approve", cwd=stack, env=env).code == 0
    iam.create_role(RoleName=ADMIN_ROLE, AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName=ADMIN_ROLE, PolicyName="read-all", PolicyDocument=READ_ALL)
    report = json.loads(cli("access", "--format", "json", cwd=stack, env=env).stdout)
    [secret] = report["secrets"]
    assert secret["readers_complete"] is False
    assert any("access_scan: false" in r for r in secret["incomplete_reasons"])
    drift = cli("drift", cwd=stack, env=env)
    assert drift.code == 0 and "not fully known" in drift.stderr
    assert "unknown" in cli("access", cwd=stack, env=env).stdout

"""The adapter's pure parts: resource policies, endpoints, tokens, the action table."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.actions import ACTIONS, policy_document
from cloudsync.providers.aws.client import check_endpoint
from cloudsync.providers.aws.policy import parse_policy, render_policy
from cloudsync.providers.aws.write import request_token
from cloudsync.providers.base import DeleteRequest, Operation, ProviderError

ROLE = "arn:aws:iam::123456789012:role/app"
PACKAGE = Path(__file__).parents[3] / "cloudsync" / "providers" / "aws"


def _doc(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_render_then_parse_round_trips() -> None:
    text = render_policy({ROLE, "arn:aws:iam::123456789012:role/b"})
    assert text is not None
    parsed = parse_policy(text)
    assert parsed.readers == {ROLE, "arn:aws:iam::123456789012:role/b"}
    assert parsed.other_access == () and parsed.kept == ()
    assert render_policy(set()) is None


@pytest.mark.parametrize(("statement", "readers"), [
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "secretsmanager:GetSecretValue"}, {ROLE}),
    ({"Effect": "Allow", "Principal": {"AWS": [ROLE]}, "Action": ["secretsmanager:*"]}, {ROLE}),
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "*"}, {ROLE}),
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "SecretsManager:Get*"}, {ROLE}),
    ({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue"}, {"*"}),
    ({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "secretsmanager:*"},
     {"service:lambda.amazonaws.com"}),
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "NotAction": "secretsmanager:DeleteSecret"}, {ROLE}),
    ({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "secretsmanager:DescribeSecret"}, set()),
    ({"Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "secretsmanager:GetSecretValue"}, set()),
])
def test_any_allow_that_grants_read_is_a_reader(statement: dict[str, object], readers: set[str]) -> None:
    assert parse_policy(_doc(statement)).readers == readers


def test_statements_granting_no_read_are_reported_and_kept() -> None:
    deny = {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:DeleteSecret", "Resource": "*"}
    read = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "secretsmanager:*", "Resource": "*"}
    parsed = parse_policy(_doc(deny, read))
    assert parsed.other_access == ("Deny secretsmanager:DeleteSecret to *",)
    rewritten = json.loads(render_policy(set(), parsed.kept) or "{}")
    assert rewritten["Statement"] == [deny]  # the foreign read grant is gone, the Deny stays


def test_unparseable_policy_is_reported_not_trusted() -> None:
    assert parse_policy("not json").other_access == ("unparseable resource policy",)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://127.3.4.5", "http://localhost:4566",
                                      "http://[::1]:4566", "https://vpce-1.secretsmanager.us-east-1.vpce.amazonaws.com"])
def test_accepted_endpoints(endpoint: str) -> None:
    assert check_endpoint("t", endpoint) == endpoint


@pytest.mark.parametrize("endpoint", ["http://10.0.0.1", "http://example.com:80", "http://128.0.0.1",
                                      "file:///etc/passwd", "https://", "127.0.0.1:5000"])
def test_refused_endpoints(endpoint: str) -> None:
    with pytest.raises(ProviderError) as raised:
        check_endpoint("aws-prod", endpoint)
    assert "aws-prod" in raised.value.message and raised.value.hint


def test_request_tokens_are_deterministic_valid_and_distinct() -> None:
    def request(token: str, name: str) -> DeleteRequest:
        return DeleteRequest(stack="s", name=name, token=token)

    first = request_token(request("t1", "a"), "value")
    assert first == request_token(request("t1", "a"), "value")
    assert 32 <= len(first) <= 64
    others = {request_token(request("t2", "a"), "value"), request_token(request("t1", "b"), "value"),
              request_token(request("t1", "a"), "create")}
    assert first not in others and len(others) == 3


def test_every_call_in_the_code_is_in_the_action_table() -> None:
    called = set()
    for path in PACKAGE.glob("*.py"):
        called.update(re.findall(r'\.call\(\s*"([A-Za-z]+)"', path.read_text()))
    assert called == set(ACTIONS)


def test_permissions_per_operation_are_least_privilege() -> None:
    perms = AwsProvider.permissions()
    metadata = set(perms[Operation.PLAN_METADATA])
    # LookupEvents: the policy-change feed of access_drift: changed (the default); ListSecretVersionIds:
    # `cloudsync access --versions`, which runs with this role.
    assert metadata == {"secretsmanager:ListSecrets", "secretsmanager:DescribeSecret",
                        "secretsmanager:GetResourcePolicy", "secretsmanager:ListSecretVersionIds",
                        "cloudtrail:LookupEvents", "iam:GetAccountAuthorizationDetails"}
    assert set(perms[Operation.PLAN]) == metadata | {"secretsmanager:GetSecretValue",
                                                     "secretsmanager:BatchGetSecretValue"}
    assert set(perms[Operation.APPLY]) == {a.iam_action for a in ACTIONS.values() if a.used_by} | {
        "iam:GetAccountAuthorizationDetails"}


def test_the_event_feed_is_its_own_statement_and_only_under_changed() -> None:
    from cloudsync.providers.aws.actions import permissions_by_operation

    statements = {s["Sid"]: s for s in policy_document(Operation.PLAN_METADATA, stack="p",
                                                       region="eu-west-1")["Statement"]}
    assert statements["LookupPolicyChanges"] == {"Sid": "LookupPolicyChanges", "Effect": "Allow",
                                                 "Action": ["cloudtrail:LookupEvents"], "Resource": "*"}
    assert statements["ListSecrets"]["Action"] == ["secretsmanager:ListSecrets"]
    without = policy_document(Operation.PLAN, stack="p", region="eu-west-1", events=False)
    assert "LookupPolicyChanges" not in {s["Sid"] for s in without["Statement"]}
    assert all("cloudtrail:LookupEvents" not in actions
               for actions in permissions_by_operation(events=False).values())


def test_a_target_that_opts_out_of_the_access_scan_needs_no_iam_read() -> None:
    from cloudsync.providers.aws.actions import permissions_by_operation

    for operation, actions in permissions_by_operation(access_scan=False).items():
        assert not any(a.startswith("iam:") for a in actions), operation
    document = policy_document(Operation.PLAN_METADATA, stack="payments", region="eu-west-1", access_scan=False)
    assert "ScanWhoCanRead" not in {s["Sid"] for s in document["Statement"]}
    scan = {s["Sid"]: s for s in policy_document(Operation.PLAN_METADATA, stack="p", region="eu-west-1")["Statement"]}
    assert scan["ScanWhoCanRead"] == {"Sid": "ScanWhoCanRead", "Effect": "Allow",
                                      "Action": ["iam:GetAccountAuthorizationDetails"], "Resource": "*"}


def test_policy_document_limits_writes_to_the_stacks_secrets() -> None:
    document = policy_document(Operation.APPLY, stack="payments", region="eu-west-1", replica_regions=["us-east-1"])
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    owned = by_sid["ManageOwnedSecrets"]
    assert "secretsmanager:DeleteSecret" in owned["Action"]
    assert owned["Condition"]["StringEquals"]["secretsmanager:ResourceTag/cloudsync-stack"] == "payments"
    assert owned["Resource"] == ["arn:aws:secretsmanager:eu-west-1:*:secret:*",
                                 "arn:aws:secretsmanager:us-east-1:*:secret:*"]
    create = by_sid["CreateOwnedSecrets"]
    assert create["Condition"]["StringEquals"]["aws:RequestTag/cloudsync-stack"] == "payments"
    assert by_sid["ListSecrets"]["Resource"] == "*"

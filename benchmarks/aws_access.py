"""What the AWS access scan costs: API calls by operation and wall time.

Starts a moto server on 127.0.0.1, creates N secrets (one in ten with a resource policy)
and an IAM estate of ~50 principals (roles and users, groups, customer managed policies with
several versions, inline policies: wildcard ARNs, NotAction, NotResource, Deny, Condition),
then runs the scan the way an AWS target does: the read's ListSecrets pages and
GetResourcePolicy calls (made by the plan anyway), then the scan's own calls, which are
GetAccountAuthorizationDetails pages and nothing else. Calls are counted with botocore's
``before-call`` event hook.

moto answers GetAccountAuthorizationDetails in one page; AWS returns at most MaxItems
(1000) entities per page, so the AWS figure printed is ceil(entities / 1000) pages, at least.

    .venv/bin/python benchmarks/aws_access.py [--sizes 1000,10000] [--principals 50]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import Counter
from typing import Any

import boto3
from aws_plan import FAKE_ENV, reset, start_moto

from cloudsync.providers.access import Via
from cloudsync.providers.aws.access import (
    PAGE_SIZE,
    ScannedSecret,
    evaluate_access,
    read_authorization_details,
    scan_access,
    scanned_secret,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
POLICY_EVERY = 10  # one secret in ten has a resource policy
TEAMS = ("payments", "billing", "ops", "search", "identity")
READ = "secretsmanager:GetSecretValue"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _team_statements(team: str) -> list[dict[str, Any]]:
    return [
        {"Sid": "Team", "Effect": "Allow", "Action": "secretsmanager:Get*",
         "Resource": f"arn:aws:secretsmanager:*:*:secret:{team}/*"},
        {"Sid": "NotOthers", "Effect": "Allow", "Action": READ, "NotResource": "arn:aws:secretsmanager:*:*:secret:ops/*",
         "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
        {"Sid": "NoIdentity", "Effect": "Deny", "Action": "secretsmanager:*",
         "Resource": "arn:aws:secretsmanager:*:*:secret:identity/*"},
    ]


def build_iam(iam: Any, principals: int) -> Counter[str]:
    """Roles and users (half each), five groups, a managed policy per team with a non-default version."""
    made: Counter[str] = Counter()
    for team in TEAMS:
        arn = iam.create_policy(PolicyName=f"{team}-read", PolicyDocument=_doc(*_team_statements(team)))["Policy"]["Arn"]
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
                                  SetAsDefault=False)
        iam.create_group(GroupName=team)
        iam.attach_group_policy(GroupName=team, PolicyArn=arn)
        made["policies"] += 1
        made["groups"] += 1
    iam.create_policy(PolicyName="power-user", PolicyDocument=_doc(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}))
    for i in range(principals):
        team = TEAMS[i % len(TEAMS)]
        inline = _doc({"Effect": "Allow", "Action": READ, "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:"
                       f"secret:{team}/secret-{i:05d}-??????"})
        if i % 2:
            name = f"user-{i:03d}"
            iam.create_user(UserName=name)
            iam.add_user_to_group(GroupName=team, UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=inline)
            made["users"] += 1
        else:
            name = f"role-{i:03d}"
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=_doc())
            iam.put_role_policy(RoleName=name, PolicyName="own", PolicyDocument=inline)
            iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/{team}-read")
            if i % 10 == 0:
                iam.attach_role_policy(RoleName=name, PolicyArn=f"arn:aws:iam::{ACCOUNT}:policy/power-user")
            made["roles"] += 1
    made["policies"] += 1
    return made


def build_secrets(sm: Any, size: int) -> None:
    for i in range(size):
        name = f"{TEAMS[i % len(TEAMS)]}/secret-{i:05d}"
        sm.create_secret(Name=name, SecretString="bench")
        if i % POLICY_EVERY == 0:
            principal = "*" if i % (POLICY_EVERY * 5) == 0 else f"arn:aws:iam::{ACCOUNT}:role/role-000"
            sm.put_resource_policy(SecretId=name, ResourcePolicy=_doc(
                {"Sid": "Share", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": READ, "Resource": "*"}))


def counting(client: Any, service: str, calls: Counter[str]) -> Any:
    def count(model: Any, **_kwargs: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register(f"before-call.{service}", count)
    return client


def read_target(sm: Any) -> list[ScannedSecret]:
    """What the target's read already does: ListSecrets pages, GetResourcePolicy per secret."""
    secrets = []
    for page in sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 100}):
        for entry in page["SecretList"]:
            policy = sm.get_resource_policy(SecretId=entry["Name"]).get("ResourcePolicy")
            secrets.append(scanned_secret(entry, policy))
    return secrets


def run(url: str, size: int, principals: int) -> None:
    reset(url)
    calls: Counter[str] = Counter()
    sm = counting(boto3.client("secretsmanager", region_name=REGION, endpoint_url=url), "secrets-manager", calls)
    iam = counting(boto3.client("iam", region_name=REGION, endpoint_url=url), "iam", calls)
    started = time.perf_counter()
    made = build_iam(iam, principals)
    build_secrets(sm, size)
    seeded = time.perf_counter() - started
    calls.clear()

    started = time.perf_counter()
    secrets = read_target(sm)
    read_seconds = time.perf_counter() - started
    read_calls = dict(calls)
    calls.clear()

    started = time.perf_counter()
    scan = scan_access(iam, secrets)
    scan_seconds = time.perf_counter() - started
    scan_calls = dict(calls)
    pages, _ = read_authorization_details(iam)
    started = time.perf_counter()
    evaluate_access(pages, secrets)
    evaluate_seconds = time.perf_counter() - started
    total = sum(len(page.get(k) or []) for page in pages
                for k in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"))

    readers = [r for found in scan.readers.values() for r in found]
    broad = sum(1 for r in readers if r.via is Via.ACCOUNT)
    print(f"{size} secrets, {made['roles']} roles + {made['users']} users, {made['groups']} groups, "
          f"{made['policies']} managed policies ({total} entities); seeded in {seeded:.1f} s")
    print(f"  read (made by the plan anyway) {read_seconds:7.2f} s  "
          f"[{', '.join(f'{op} {n}' for op, n in sorted(read_calls.items()))}]")
    print(f"  scan (added)                   {scan_seconds:7.2f} s  "
          f"[{', '.join(f'{op} {n}' for op, n in sorted(scan_calls.items()))}]  "
          f"on AWS: >= {math.ceil(total / PAGE_SIZE)} page(s) of up to {PAGE_SIZE} entities")
    print(f"    of which evaluation (no I/O) {evaluate_seconds:7.2f} s")
    print(f"  {len(readers)} effective readers ({broad} via account), complete: {scan.complete}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000", help="comma-separated numbers of secrets")
    parser.add_argument("--principals", type=int, default=50, help="roles + users in the IAM estate")
    args = parser.parse_args()
    os.environ.update(FAKE_ENV)
    os.environ["AWS_DEFAULT_REGION"] = REGION
    url = start_moto()
    print(f"moto server at {url}")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        run(url, size, args.principals)


if __name__ == "__main__":
    main()

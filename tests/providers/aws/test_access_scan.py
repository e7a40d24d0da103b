"""The AWS access scan over sockets: moto's IAM and Secrets Manager, driven by the real boto3 clients.

One account holds roles, users and groups with inline and managed policies, and secrets
with resource policies; each test asserts the exact set of effective readers per secret a
security reviewer would be shown.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.handlers import json_decode_policies

from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.aws.access import OPERATION, ScannedSecret, last_accessed, scan_access, scanned_secret
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import REGION
from tests.providers.aws.iam_proxy import IamProxy

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
OTHER_ACCOUNT = "999999999999"
SM = "arn:aws:secretsmanager:*:*:secret"
READ = "secretsmanager:GetSecretValue"
NAMES = ("payments/db-password", "payments/stripe-key", "billing/report-key", "billing/ledger", "shared/public",
         "ops/token")


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(resource: Any = "*", action: Any = READ, sid: str | None = None, **extra: Any) -> dict[str, Any]:
    return {**({"Sid": sid} if sid else {}), "Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(resource: Any = "*", action: Any = READ, sid: str | None = None, **extra: Any) -> dict[str, Any]:
    return {**({"Sid": sid} if sid else {}), "Effect": "Deny", "Action": action, "Resource": resource, **extra}


VPC = {"StringEquals": {"aws:SourceVpc": "vpc-1234"}}
ORG = {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}


@pytest.fixture
def iam(aws: MotoServer) -> Any:
    return boto3.client("iam", region_name=REGION, endpoint_url=aws.url)


@pytest.fixture
def sm(aws: MotoServer) -> Any:
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.url)


def _role(iam: Any, name: str, *inline: tuple[str, str], managed: tuple[str, ...] = ()) -> None:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc())
    for policy_name, document in inline:
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=document)
    for arn in managed:
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)


def build_account(iam: Any, sm: Any, value: str = "not-read-by-the-scan") -> dict[str, str]:
    """The account every scenario test scans; returns the secrets' ARNs by name."""
    arns = {name: sm.create_secret(Name=name, SecretString=value)["ARN"] for name in NAMES}

    iam.create_policy(PolicyName="ReadAll", PolicyDocument=doc(allow(action="secretsmanager:Get*", sid="GetAll")))
    _role(iam, "admin", managed=(policy_arn("ReadAll"),))
    _role(iam, "payments-api", ("read-payments", doc(allow(f"{SM}:payments/*"))))
    # NotAction iam:* allows every other action, GetSecretValue included; the deny on billing/* wins.
    _role(iam, "ops", ("power-user", doc({"Sid": "PowerUser", "Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})),
          ("no-billing", doc(deny(f"{SM}:billing/*", action="secretsmanager:*", sid="NoBilling"))))
    _role(iam, "not-billing", ("all-but-billing", doc({"Effect": "Allow", "Action": READ,
                                                       "NotResource": f"{SM}:billing/*"})))
    _role(iam, "vpc-only", ("in-vpc", doc(allow(sid="InVpc", Condition=VPC))))
    _role(iam, "cond-denied", ("all", doc(allow(action="*", sid="Everything"))),
          ("outside-vpc", doc(deny(f"{SM}:payments/*", sid="OutsideVpc", Condition={
              "StringNotEquals": {"aws:SourceVpc": "vpc-1234"}}))))
    _role(iam, "list-only", ("list", doc(allow(action=["secretsmanager:List*", "secretsmanager:Describe*"]))))
    exact = arns["payments/db-password"].rsplit("-", 1)[0]  # the ARN without AWS's random 6-character suffix
    _role(iam, "suffix", ("exact", doc(allow(exact, sid="NoSuffix"), allow(f"{exact}-??????", sid="WithSuffix"))))

    # A managed policy whose non-default version would grant read: only the default version counts.
    iam.create_policy(PolicyName="Rotated", PolicyDocument=doc(allow(action="secretsmanager:ListSecrets")))
    iam.create_policy_version(PolicyArn=policy_arn("Rotated"), PolicyDocument=doc(allow()), SetAsDefault=False)
    _role(iam, "old-version", managed=(policy_arn("Rotated"),))

    # Group membership: alice reads shared/* through her group; bob is in no group.
    iam.create_policy(PolicyName="ReadShared", PolicyDocument=doc(allow(
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shared/*", sid="Shared")))
    iam.create_group(GroupName="readers")
    iam.attach_group_policy(GroupName="readers", PolicyArn=policy_arn("ReadShared"))
    iam.put_group_policy(GroupName="readers", PolicyName="no-public", PolicyDocument=doc(
        deny(f"{SM}:ops/*", sid="NotOps")))
    for name in ("alice", "bob"):
        iam.create_user(UserName=name)
    iam.add_user_to_group(GroupName="readers", UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="ops", PolicyDocument=doc(allow(f"{SM}:ops/*", sid="Ops")))

    resource_policies = {
        "payments/db-password": doc({"Sid": "App", "Effect": "Allow", "Principal": {"AWS": role("payments-api")},
                                     "Action": READ, "Resource": "*"}),
        "payments/stripe-key": doc({"Sid": "Org", "Effect": "Allow", "Principal": "*", "Action": READ,
                                    "Resource": "*", "Condition": ORG}),
        "billing/report-key": doc({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": OTHER_ACCOUNT},
                                   "Action": "secretsmanager:*", "Resource": "*"}),
        "billing/ledger": doc({"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": READ,
                               "Resource": "*"}),
        "shared/public": doc({"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": READ,
                              "Resource": "*"}),
        # A resource-policy Deny overrides the admin role's identity-policy Allow.
        "ops/token": doc({"Sid": "NotAdmin", "Effect": "Deny", "Principal": {"AWS": role("admin")}, "Action": READ,
                          "Resource": "*"}),
    }
    for name, text in resource_policies.items():
        sm.put_resource_policy(SecretId=name, ResourcePolicy=text)
    return arns


def secrets_of(sm: Any) -> list[ScannedSecret]:
    """What the target's read hands the scan: ListSecrets entries and GetResourcePolicy texts."""
    found = []
    for entry in sm.list_secrets()["SecretList"]:
        policy = sm.get_resource_policy(SecretId=entry["Name"]).get("ResourcePolicy")
        found.append(scanned_secret(entry, policy))
    return found


def identity(principal: str, grant: str, *, conditional: bool = False) -> EffectiveReader:
    return EffectiveReader(principal, Via.ACCOUNT, ROOT, grant, conditional)


def expected_readers(arns: dict[str, str]) -> dict[str, set[EffectiveReader]]:
    admin = identity(role("admin"), f"policy {policy_arn('ReadAll')}, statement GetAll")
    ops = identity(role("ops"), f"inline policy power-user of {role('ops')}, statement PowerUser")
    not_billing = identity(role("not-billing"), f"inline policy all-but-billing of {role('not-billing')}, statement #1")
    vpc = identity(role("vpc-only"), f"inline policy in-vpc of {role('vpc-only')}, statement InVpc", conditional=True)
    everything = f"inline policy all of {role('cond-denied')}, statement Everything"
    cond = identity(role("cond-denied"), everything)
    cond_payments = identity(role("cond-denied"), everything + f"; conditionally denied by inline policy outside-vpc of "
                             f"{role('cond-denied')}, statement OutsideVpc", conditional=True)
    payments_api = identity(role("payments-api"), f"inline policy read-payments of {role('payments-api')}, statement #1")
    suffix = identity(role("suffix"), f"inline policy exact of {role('suffix')}, statement WithSuffix")
    alice_shared = identity(user("alice"), f"policy {policy_arn('ReadShared')} via group "
                                           f"arn:aws:iam::{ACCOUNT}:group/readers, statement Shared")

    def on_secret(name: str, principal: str, via: Via, sid: str, conditional: bool = False) -> EffectiveReader:
        return EffectiveReader(principal, via, arns[name], f"resource policy, statement {sid}", conditional)

    return {
        "payments/db-password": {admin, ops, not_billing, vpc, cond_payments, payments_api, suffix,
                                 on_secret("payments/db-password", role("payments-api"), Via.SECRET, "App")},
        "payments/stripe-key": {admin, ops, not_billing, vpc, cond_payments, payments_api,
                                on_secret("payments/stripe-key", "*", Via.ACCOUNT, "Org", conditional=True)},
        "billing/report-key": {admin, vpc, cond,
                               on_secret("billing/report-key", f"arn:aws:iam::{OTHER_ACCOUNT}:root", Via.ACCOUNT,
                                         "Partner")},
        "billing/ledger": {admin, vpc, cond, on_secret("billing/ledger", ROOT, Via.ACCOUNT, "Account")},
        "shared/public": {admin, ops, not_billing, vpc, cond, alice_shared,
                          on_secret("shared/public", "*", Via.ACCOUNT, "Everyone")},
        # admin is denied by the resource policy; alice's own Allow loses to her group's Deny.
        "ops/token": {ops, not_billing, vpc, cond},
    }


def as_sets(scan: AccessScan) -> dict[str, set[EffectiveReader]]:
    return {name: set(readers) for name, readers in scan.readers.items()}


def test_every_reader_of_every_secret_with_its_scope_grant_and_condition(iam: Any, sm: Any, canary: str) -> None:
    arns = build_account(iam, sm, canary)
    secrets = secrets_of(sm)
    counter: Counter[str] = Counter()
    on_the_wire: Counter[str] = Counter()
    iam.meta.events.register("before-call.iam", lambda model, **_: on_the_wire.update([model.name]))

    scan = scan_access(iam, secrets, counter=counter)

    assert canary not in repr(scan)  # the scan reads policies, never a value
    assert as_sets(scan) == expected_readers(arns)
    assert scan.complete and scan.reasons == ()
    assert all(scan.complete_for(name) for name in NAMES)
    # The scan's only calls: GetAccountAuthorizationDetails pages (moto answers in one).
    assert on_the_wire == counter == Counter({OPERATION: 1})


def test_documents_as_iam_sends_them_url_encoded_give_the_same_readers(aws: MotoServer, iam: Any, sm: Any) -> None:
    arns = build_account(iam, sm)
    # boto3 decodes IAM's URL-encoded documents into dicts; without that handler the scan gets
    # the wire form (RFC 3986 URL-encoded JSON text), as any other client would.
    raw = boto3.client("iam", region_name=REGION, endpoint_url=aws.url)
    raw.meta.events.unregister("after-call.iam", json_decode_policies)
    page = raw.get_account_authorization_details()
    document = page["Policies"][0]["PolicyVersionList"][0]["Document"]
    assert isinstance(document, str) and document.startswith("%7B")

    assert as_sets(scan_access(raw, secrets_of(sm))) == expected_readers(arns)


@pytest.fixture
def iam_proxy(aws: MotoServer) -> Iterator[IamProxy]:
    proxy = IamProxy(aws.url)
    yield proxy
    proxy.close()


def test_moto_answers_authorization_details_in_one_page_whatever_max_items(iam: Any, sm: Any) -> None:
    """moto difference: AWS returns at most MaxItems entities per page with a Marker; moto ignores MaxItems."""
    build_account(iam, sm)
    page = iam.get_account_authorization_details(MaxItems=1)
    assert page["IsTruncated"] is False
    assert len(page["RoleDetailList"]) > 1


def test_paginated_details_are_read_to_the_end(iam: Any, sm: Any, iam_proxy: IamProxy) -> None:
    arns = build_account(iam, sm)
    entities = iam.get_account_authorization_details()
    total = sum(len(entities[key]) for key in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"))
    iam_proxy.page_size = 3
    paged = boto3.client("iam", region_name=REGION, endpoint_url=iam_proxy.url)
    counter: Counter[str] = Counter()

    scan = scan_access(paged, secrets_of(sm), counter=counter)

    assert as_sets(scan) == expected_readers(arns)
    pages = -(-total // 3)
    assert pages > 4  # users, groups, roles and policies all cross page boundaries
    assert counter == Counter({OPERATION: pages})
    assert Counter(iam_proxy.seen) == Counter({OPERATION: pages})
    assert scan.complete


def test_a_looping_marker_stops_and_says_so(iam: Any, sm: Any, iam_proxy: IamProxy) -> None:
    build_account(iam, sm)
    iam_proxy.page_size = 2
    iam_proxy.stuck = True
    paged = boto3.client("iam", region_name=REGION, endpoint_url=iam_proxy.url)

    scan = scan_access(paged, secrets_of(sm))

    assert not scan.complete
    assert scan.reasons[0] == "IAM authorization details repeated marker after 2 pages"


def test_too_many_pages_stop_at_the_bound(iam: Any, sm: Any, iam_proxy: IamProxy) -> None:
    build_account(iam, sm)
    iam_proxy.page_size = 1
    paged = boto3.client("iam", region_name=REGION, endpoint_url=iam_proxy.url)
    counter: Counter[str] = Counter()

    scan = scan_access(paged, secrets_of(sm), counter=counter, max_pages=4)

    assert counter == Counter({OPERATION: 4})
    assert scan.reasons[0] == "IAM authorization details stopped after 4 pages"
    assert all(not scan.complete_for(name) for name in NAMES)


def test_iam_access_denied_keeps_resource_policy_readers_and_marks_every_secret_unknown(
        iam: Any, sm: Any, iam_proxy: IamProxy) -> None:
    arns = build_account(iam, sm)
    iam_proxy.fail(OPERATION, "AccessDenied", status=403, message="not authorized")
    denied = boto3.client("iam", region_name=REGION, endpoint_url=iam_proxy.url,
                          config=Config(retries={"mode": "standard", "max_attempts": 1}))

    scan = scan_access(denied, secrets_of(sm))

    assert not scan.complete
    assert scan.reasons == ("identity policies not readable: access denied to iam:GetAccountAuthorizationDetails",)
    assert all(scan.reasons_for(name) == scan.reasons for name in NAMES)
    # What the resource policies say is still shown: a lower bound, never "none".
    assert as_sets(scan) == {name: {r for r in readers if r.scope == arns[name]}
                             for name, readers in expected_readers(arns).items()}


def test_opting_out_reads_no_iam_and_marks_the_scan_incomplete(iam: Any, sm: Any) -> None:
    arns = build_account(iam, sm)

    scan = scan_access(None, secrets_of(sm))

    assert scan.reasons == ("identity policies not scanned (access_scan: false)",)
    assert as_sets(scan) == {name: {r for r in readers if r.scope == arns[name]}
                             for name, readers in expected_readers(arns).items()}


def test_no_secrets_no_calls(iam_proxy: IamProxy) -> None:
    client = boto3.client("iam", region_name=REGION, endpoint_url=iam_proxy.url)
    assert scan_access(client, []) == AccessScan(readers={})
    assert iam_proxy.seen == []


def test_a_secret_whose_policy_could_not_be_read_is_unknown(iam: Any, sm: Any) -> None:
    build_account(iam, sm)
    secrets = [s if s.name != "ops/token" else ScannedSecret(s.name, s.arn, policy_read=False)
               for s in secrets_of(sm)]

    scan = scan_access(iam, secrets)

    assert scan.reasons_for("ops/token") == ("resource policy not read",)
    assert scan.complete_for("shared/public")
    assert not scan.complete


def test_removing_the_broad_grant_removes_the_reader(iam: Any, sm: Any) -> None:
    build_account(iam, sm)
    before = scan_access(iam, secrets_of(sm))
    assert role("admin") in {r.principal for r in before.readers_of("billing/ledger")}

    iam.detach_role_policy(RoleName="admin", PolicyArn=policy_arn("ReadAll"))
    sm.delete_resource_policy(SecretId="shared/public")
    after = scan_access(iam, secrets_of(sm))

    assert all(role("admin") not in {r.principal for r in after.readers_of(name)} for name in NAMES)
    assert "*" not in {r.principal for r in after.readers_of("shared/public")}


# --- LastAccessedDate ---------------------------------------------------------------------------


def test_moto_never_records_last_accessed_date(sm: Any) -> None:
    """moto difference: AWS sets LastAccessedDate (a day, at midnight UTC) when a value is read; moto never does."""
    sm.create_secret(Name="payments/db-password", SecretString="x")
    sm.get_secret_value(SecretId="payments/db-password")
    entry = sm.list_secrets()["SecretList"][0]
    assert entry.get("LastAccessedDate") is None
    assert last_accessed(entry) is None


def test_last_accessed_date_from_list_secrets_as_aws_sends_it(aws: MotoServer) -> None:
    proxy = FaultProxy(aws.url)
    try:
        day = datetime(2026, 3, 14, tzinfo=UTC)

        def as_aws(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**e, "LastAccessedDate": day.timestamp()} if e["Name"] == "used" else e for e in entries]

        proxy.list_filter = as_aws
        client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=proxy.url)
        client.create_secret(Name="used", SecretString="x")
        client.create_secret(Name="unused", SecretString="x")

        found = {s.name: s.last_accessed for s in (scanned_secret(e) for e in client.list_secrets()["SecretList"])}
        scan = scan_access(None, [scanned_secret(e) for e in client.list_secrets()["SecretList"]])
    finally:
        proxy.close()
    assert found == {"used": date(2026, 3, 14), "unused": None}
    assert scan.last_accessed == found

"""The AWS access evaluation as a pure function: authorization-details pages + resource policies → readers.

The socket tests (test_access_scan.py) cover what moto can serve; these cases cover what it
cannot (AWS managed policies, details that reference missing entities, every document form)
and each rule of the evaluation by name.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from cloudsync.providers.access import EffectiveReader, Via
from cloudsync.providers.aws.access import ScannedSecret, evaluate_access
from cloudsync.providers.aws.statements import MAX_DOCUMENT, decode, parse

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:payments/db-AbCdEf"
READ = "secretsmanager:GetSecretValue"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
AWS_MANAGED = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": READ, "Resource": "*", **extra}


def deny(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": READ, "Resource": "*", **extra}


def role(arn: str = ROLE, inline: Any = None, managed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"Arn": arn, "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": inline}] if inline else [],
            "AttachedManagedPolicies": [{"PolicyArn": a} for a in managed]}


def managed(arn: str, *versions: tuple[Any, bool]) -> dict[str, Any]:
    return {"Arn": arn, "PolicyVersionList": [{"VersionId": f"v{i}", "Document": d, "IsDefaultVersion": default}
                                              for i, (d, default) in enumerate(versions, start=1)]}


def scan(pages: list[dict[str, Any]], policy: Any = None, *, policy_read: bool = True) -> Any:
    text = json.dumps(policy) if isinstance(policy, dict) else policy
    return evaluate_access(pages, [ScannedSecret("payments/db", ARN, text, policy_read=policy_read)])


def readers(pages: list[dict[str, Any]], policy: Any = None) -> set[EffectiveReader]:
    return set(scan(pages, policy).readers_of("payments/db"))


def on_secret(principal: str, via: Via, sid: str, conditional: bool = False) -> EffectiveReader:
    return EffectiveReader(principal, via, ARN, f"resource policy, statement {sid}", conditional)


INLINE = f"inline policy p of {ROLE}, statement #1"


# --- documents in every form ---------------------------------------------------------------


PLAIN = document(allow(Sid="Read", Condition={"StringLike": {"aws:userid": "AID%41*"}}))


@pytest.mark.parametrize("raw", [
    pytest.param(PLAIN, id="dict (boto3 decoded)"),
    pytest.param(json.dumps(PLAIN), id="plain JSON text (GetResourcePolicy)"),
    pytest.param(quote(json.dumps(PLAIN), safe=""), id="URL-encoded JSON (IAM on the wire)"),
])
def test_every_document_form_decodes_to_the_same_document(raw: Any) -> None:
    # The literal "%41" survives: plain JSON is never URL-decoded.
    assert decode(raw) == PLAIN


@pytest.mark.parametrize("raw", [
    pytest.param("not json", id="garbage"),
    pytest.param("[1, 2]", id="not an object"),
    pytest.param(json.dumps(PLAIN) + " " * MAX_DOCUMENT, id="larger than any AWS document"),
    pytest.param("[" * 100_000, id="nested past the parser's depth"),
    pytest.param(None, id="missing"),
])
def test_unreadable_documents_decode_to_nothing(raw: Any) -> None:
    assert decode(raw) is None


def test_statements_that_cannot_be_understood_are_problems_not_silence() -> None:
    parsed = parse(document("text", {"Action": READ, "Resource": "*"}, allow(Sid="Ok")))
    assert parsed.problems == ("statement #1 is not an object", "statement #2 has no Allow/Deny effect")
    assert [s.label for s in parsed.statements] == ["statement Ok"]


def test_a_single_statement_object_and_irrelevant_statements() -> None:
    single = {"Version": "2012-10-17", "Statement": allow()}
    assert [s.label for s in parse(single).statements] == ["statement #1"]
    unrelated = document({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, deny(Action="kms:*"))
    assert parse(unrelated).statements == ()


# --- identity policies ---------------------------------------------------------------------------


def identity(principal: str, grant: str, conditional: bool = False) -> EffectiveReader:
    return EffectiveReader(principal, Via.ACCOUNT, ROOT, grant, conditional)


CASES: list[tuple[str, list[dict[str, Any]], set[EffectiveReader]]] = [
    ("an AWS managed policy counts like a customer one",
     [{"RoleDetailList": [role(managed=(AWS_MANAGED,))],
       "Policies": [managed(AWS_MANAGED, (document(allow(Action="secretsmanager:*")), True))]}],
     {identity(ROLE, f"policy {AWS_MANAGED}, statement #1")}),
    ("only the default version counts",
     [{"RoleDetailList": [role(managed=(AWS_MANAGED,))],
       "Policies": [managed(AWS_MANAGED, (document(allow()), False), (document(), True))]}],
     set()),
    ("the default version found by DefaultVersionId when no version is flagged",
     [{"RoleDetailList": [role(managed=(AWS_MANAGED,))],
       "Policies": [{**managed(AWS_MANAGED, (document(), False), (document(allow()), False)),
                     "DefaultVersionId": "v2"}]}],
     {identity(ROLE, f"policy {AWS_MANAGED}, statement #1")}),
    ("details split over pages are joined",
     [{"RoleDetailList": [role(managed=(AWS_MANAGED,))]},
      {"Policies": [managed(AWS_MANAGED, (document(allow()), True))]}],
     {identity(ROLE, f"policy {AWS_MANAGED}, statement #1")}),
    ("a principal of another account gets nothing from its own identity policy",
     [{"RoleDetailList": [role("arn:aws:iam::210987654321:role/app", document(allow()))]}],
     set()),
    ("a request variable in the resource makes the grant conditional",
     [{"RoleDetailList": [role(inline=document(allow(Resource="arn:aws:secretsmanager:*:*:secret:${aws:username}/*")))]}],
     {identity(ROLE, INLINE, conditional=True)}),
    ("a NotResource that only a request variable could exclude is conditional",
     [{"RoleDetailList": [role(inline=document({"Effect": "Allow", "Action": READ,
                                                "NotResource": "arn:aws:secretsmanager:*:*:secret:${aws:username}*"}))]}],
     {identity(ROLE, INLINE, conditional=True)}),
    ("a Deny whose resource depends on the request is a conditional deny",
     [{"RoleDetailList": [role(inline=document(allow(), deny(
         Resource="arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team}/*")))]}],
     {identity(ROLE, f"{INLINE}; conditionally denied by inline policy p of {ROLE}, statement #2", True)}),
    ("a user's inline and group policies both count, each its own grant",
     [{"UserDetailList": [{"Arn": f"arn:aws:iam::{ACCOUNT}:user/u", "GroupList": ["g"],
                           "UserPolicyList": [{"PolicyName": "own", "PolicyDocument": document(allow(Sid="Own"))}]}],
       "GroupDetailList": [{"GroupName": "g", "Arn": f"arn:aws:iam::{ACCOUNT}:group/g",
                            "GroupPolicyList": [{"PolicyName": "gp", "PolicyDocument": document(allow(Sid="G"))}]}]}],
     {identity(f"arn:aws:iam::{ACCOUNT}:user/u", f"inline policy own of arn:aws:iam::{ACCOUNT}:user/u, statement Own"),
      identity(f"arn:aws:iam::{ACCOUNT}:user/u",
               f"inline policy gp of arn:aws:iam::{ACCOUNT}:group/g, statement G")}),
    ("a group grants nobody by itself",
     [{"GroupDetailList": [{"GroupName": "g", "Arn": f"arn:aws:iam::{ACCOUNT}:group/g",
                            "GroupPolicyList": [{"PolicyName": "gp", "PolicyDocument": document(allow())}]}]}],
     set()),
]


@pytest.mark.parametrize(("pages", "expected"), [pytest.param(p, e, id=name) for name, p, e in CASES])
def test_identity_policies(pages: list[dict[str, Any]], expected: set[EffectiveReader]) -> None:
    result = scan(pages)
    assert set(result.readers_of("payments/db")) == expected
    assert result.complete


@pytest.mark.parametrize(("pages", "reason"), [
    pytest.param([{"RoleDetailList": [role(managed=(AWS_MANAGED,))]}],
                 f"policy {AWS_MANAGED} attached to {ROLE} is missing from the authorization details",
                 id="attached policy missing"),
    pytest.param([{"UserDetailList": [{"Arn": f"arn:aws:iam::{ACCOUNT}:user/u", "GroupList": ["gone"]}]}],
                 f"group gone of arn:aws:iam::{ACCOUNT}:user/u is missing from the authorization details",
                 id="group missing"),
    pytest.param([{"RoleDetailList": [role(managed=(AWS_MANAGED,))],
                   "Policies": [managed(AWS_MANAGED, ("%7Bbroken", True))]}],
                 f"policy {AWS_MANAGED}: unreadable policy document", id="document unreadable"),
])
def test_what_the_details_do_not_say_makes_the_scan_incomplete(pages: list[dict[str, Any]], reason: str) -> None:
    result = scan(pages)
    assert result.reasons == (reason,)
    assert not result.complete_for("payments/db")


# --- resource policies ---------------------------------------------------------------------------


APP_ROLE = [{"RoleDetailList": [role(inline=document(allow()))]}]

RESOURCE_CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], set[EffectiveReader]]] = [
    ("a service principal is a specific principal",
     [], document(allow(Sid="Rotation", Principal={"Service": "lambda.amazonaws.com"})),
     {on_secret("service:lambda.amazonaws.com", Via.SECRET, "Rotation")}),
    ("NotPrincipal allows everyone else: as broad as *",
     [], document(allow(Sid="AllBut", NotPrincipal={"AWS": ROLE})),
     {EffectiveReader("*", Via.ACCOUNT, ARN, "resource policy, statement AllBut (NotPrincipal)")}),
    ("a statement for another secret's ARN grants nothing here",
     [], document(allow(Sid="Other", Principal="*", Resource=ARN.replace("payments/db", "billing/x"))),
     set()),
    ("a deny of the account root removes the account's identity readers, not *",
     APP_ROLE, document(allow(Sid="All", Principal="*"), deny(Principal={"AWS": ACCOUNT})),
     {on_secret("*", Via.ACCOUNT, "All")}),
    ("a deny of * removes everyone",
     APP_ROLE, document(allow(Sid="All", Principal="*"), deny(Principal="*")),
     set()),
    ("a deny of everyone but one leaves that one, and leaves * listed",
     [*APP_ROLE, {"RoleDetailList": [role(f"arn:aws:iam::{ACCOUNT}:role/other", document(allow()))]}],
     document(allow(Sid="All", Principal="*"), deny(NotPrincipal={"AWS": ROLE})),
     {identity(ROLE, INLINE), on_secret("*", Via.ACCOUNT, "All")}),
    ("a conditional deny of * keeps every reader, conditional",
     APP_ROLE, document(deny(Sid="OutsideOrg", Principal="*", Condition={"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}})),
     {identity(ROLE, f"{INLINE}; conditionally denied by resource policy, statement OutsideOrg", True)}),
    ("an identity deny removes the principal's resource-policy grant too",
     [{"RoleDetailList": [role(inline=document(deny()))]}], document(allow(Sid="App", Principal={"AWS": ROLE})),
     set()),
    ("a resource-policy grant to another account's role is the secret's own grant",
     [], document(allow(Sid="Partner", Principal={"AWS": "arn:aws:iam::210987654321:role/partner"})),
     {on_secret("arn:aws:iam::210987654321:role/partner", Via.SECRET, "Partner")}),
    ("a bare account id is that account's root",
     [], document(allow(Sid="Partner", Principal={"AWS": ["210987654321", "*"]})),
     {on_secret("arn:aws:iam::210987654321:root", Via.ACCOUNT, "Partner"), on_secret("*", Via.ACCOUNT, "Partner")}),
]


@pytest.mark.parametrize(("pages", "policy", "expected"),
                         [pytest.param(p, d, e, id=name) for name, p, d, e in RESOURCE_CASES])
def test_resource_policies(pages: list[dict[str, Any]], policy: dict[str, Any], expected: set[EffectiveReader]) -> None:
    assert readers(pages, policy) == expected


def test_an_unreadable_resource_policy_leaves_the_secret_incomplete() -> None:
    result = scan(APP_ROLE, "{not json")
    assert result.reasons_for("payments/db") == ("resource policy: unreadable policy document",)
    assert set(result.readers_of("payments/db")) == {identity(ROLE, INLINE)}


def test_a_policy_that_was_not_read_leaves_the_secret_incomplete() -> None:
    result = scan(APP_ROLE, None, policy_read=False)
    assert result.reasons_for("payments/db") == ("resource policy not read",)
    assert not result.complete

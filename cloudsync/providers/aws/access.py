"""Who can read each secret of an AWS target: identity policies and resource policies.

One bulk read per target: ``iam:GetAccountAuthorizationDetails``, paginated (users with
their groups, groups, roles, customer and AWS managed policies with every version, inline
policies). It is the only call the scan adds; the resource policies come from the
``GetResourcePolicy`` calls the target's read already makes, ``LastAccessedDate`` from its
``ListSecrets`` pages.

What is evaluated, for ``secretsmanager:GetSecretValue`` on each secret's ARN:

- identity policies of every role and user (a user's groups' policies included): inline
  policies and the *default version* of each attached managed policy;
- the secret's resource policy: ``Allow`` to ``*``, to an account (its root or bare id) or
  to a specific principal;
- ``Action`` / ``NotAction`` and ``Resource`` / ``NotResource`` with IAM's wildcards
  (:mod:`cloudsync.providers.aws.wildcards`);
- an explicit unconditional ``Deny`` (identity or resource policy) removes the reader;
- a statement with a ``Condition`` (or a request-dependent policy variable in its
  resource) is listed as ``conditional``. A *conditional* ``Deny`` does not remove an
  ``Allow``: the reader stays listed, marked conditional, and its grant names the deny.

What is NOT evaluated: permission boundaries, service control and resource control
policies (AWS Organizations), session policies, and the KMS key policy a customer-managed
key adds. Each can only take access away, so they make the list longer than the truth,
never shorter. Another account's IAM is not visible: a grant to that account is listed as
its root, which stands for whichever of its principals that account lets through.

Readers are reported as :class:`EffectiveReader`: identity-policy grants ``via account``
with the account's root ARN as scope; resource-policy grants with the secret's ARN as scope,
``via account`` when they name ``*`` or an account, ``via secret`` when they name one
principal.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.aws.errors import ACCESS_CODES, error_code
from cloudsync.providers.aws.statements import ANYONE, Effect, Statement, account_root, parse

OPERATION = "GetAccountAuthorizationDetails"
IAM_ACTION = f"iam:{OPERATION}"
FILTER = ("User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy")
PAGE_SIZE = 1000  # IAM's maximum MaxItems (it may return fewer)
# An account holds at most ~5,000 users, 5,000 roles, 300 groups, 5,000 customer and ~1,300 AWS
# managed policies: ~17 full pages. A longer run is a looping marker, not an account.
MAX_PAGES = 100
OPTED_OUT = "identity policies not scanned (access_scan: false)"


@dataclass(frozen=True)
class ScannedSecret:
    """One secret to scan: what the target's read already knows about it."""

    name: str
    arn: str
    policy: str | None = None  # the resource policy as GetResourcePolicy returns it; None: it has none
    policy_read: bool = True  # False: the policy could not be read, so its readers are unknown
    last_accessed: date | None = None


def last_accessed(entry: Mapping[str, Any]) -> date | None:
    """The day a ListSecrets / DescribeSecret entry says the secret was last read (AWS keeps dates only)."""
    raw = entry.get("LastAccessedDate")
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return datetime.fromtimestamp(raw, UTC).date()
    return None


def scanned_secret(entry: Mapping[str, Any], policy: str | None = None, *, policy_read: bool = True) -> ScannedSecret:
    """A :class:`ScannedSecret` from a ListSecrets entry and the secret's resource policy."""
    return ScannedSecret(name=str(entry["Name"]), arn=str(entry["ARN"]), policy=policy, policy_read=policy_read,
                         last_accessed=last_accessed(entry))


# --- reading ---------------------------------------------------------------------------------


def read_authorization_details(iam: Any, *, counter: Counter[str] | None = None,
                               max_pages: int = MAX_PAGES) -> tuple[list[Mapping[str, Any]], tuple[str, ...]]:
    """Every page of GetAccountAuthorizationDetails, and why the pages are incomplete if they are.

    Failures do not raise: the pages read so far still name readers, and the reason marks
    the scan incomplete (unknown, never "none"). botocore's standard retry mode has already
    retried throttling and transient errors.
    """
    pages: list[Mapping[str, Any]] = []
    params: dict[str, Any] = {"Filter": list(FILTER), "MaxItems": PAGE_SIZE}
    while True:
        if len(pages) >= max_pages:
            return pages, (f"IAM authorization details stopped after {max_pages} pages",)
        if counter is not None:
            counter[OPERATION] += 1
        try:
            page: Mapping[str, Any] = iam.get_account_authorization_details(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code in ACCESS_CODES:
                return pages, (f"identity policies not readable: access denied to {IAM_ACTION}",)
            return pages, (f"identity policies not readable: {IAM_ACTION} failed ({code})",)
        except BotoCoreError as exc:  # connection failures, credentials: the class name says enough
            return pages, (f"identity policies not readable: {IAM_ACTION} failed ({exc.__class__.__name__})",)
        pages.append(page)
        marker = page.get("Marker")
        if not page.get("IsTruncated") or not marker:
            return pages, ()
        if marker == params.get("Marker"):
            return pages, (f"IAM authorization details repeated marker after {len(pages)} pages",)
        params["Marker"] = marker


# --- who holds which statements --------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """One policy as it reaches a principal, and its read-relevant statements."""

    policy: str  # how a report names it: "policy <arn>", "inline policy <name> of <arn>", "... via group <arn>"
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class IamPrincipal:
    arn: str
    attachments: tuple[Attachment, ...]


@dataclass(frozen=True)
class IamIndex:
    """The account's roles and users with their policies, and what could not be understood."""

    principals: tuple[IamPrincipal, ...]
    problems: tuple[str, ...]


def _listed(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = container.get(key)
    return [entry for entry in value if isinstance(entry, Mapping)] if isinstance(value, list) else []


def _entries(pages: Sequence[Mapping[str, Any]], key: str) -> list[Mapping[str, Any]]:
    return [entry for page in pages for entry in _listed(page, key)]


def _default_document(policy: Mapping[str, Any]) -> object:
    """The document of a managed policy's default version (the only one IAM enforces)."""
    versions = [v for v in policy.get("PolicyVersionList") or [] if isinstance(v, Mapping)]
    for version in versions:
        if version.get("IsDefaultVersion") is True:
            return version.get("Document")
    for version in versions:
        if version.get("VersionId") == policy.get("DefaultVersionId"):
            return version.get("Document")
    return None


def index_principals(pages: Sequence[Mapping[str, Any]]) -> IamIndex:
    """Roles and users of GetAccountAuthorizationDetails pages, each with every policy that reaches it."""
    problems: list[str] = []

    def attachment(label: str, document: object) -> Attachment:
        parsed = parse(document)
        problems.extend(f"{label}: {problem}" for problem in parsed.problems)
        return Attachment(label, parsed.statements)

    managed: dict[str, Attachment] = {}
    for policy in _entries(pages, "Policies"):
        arn = str(policy.get("Arn"))
        managed[arn] = attachment(f"policy {arn}", _default_document(policy))

    def own(entry: Mapping[str, Any], inline_key: str, group: bool = False) -> list[Attachment]:
        arn = str(entry.get("Arn"))
        found = []
        for inline in _listed(entry, inline_key):
            found.append(attachment(f"inline policy {inline.get('PolicyName')} of {arn}", inline.get("PolicyDocument")))
        for attached in _listed(entry, "AttachedManagedPolicies"):
            policy_arn = str(attached.get("PolicyArn"))
            if policy_arn not in managed:
                problems.append(f"policy {policy_arn} attached to {arn} is missing from the authorization details")
            elif group:  # the user reads through the group: name it beside the shared policy
                found.append(Attachment(f"{managed[policy_arn].policy} via group {arn}", managed[policy_arn].statements))
            else:
                found.append(managed[policy_arn])
        return found

    groups = {str(g.get("GroupName")): own(g, "GroupPolicyList", group=True)
              for g in _entries(pages, "GroupDetailList")}
    principals = [IamPrincipal(str(role.get("Arn")), tuple(own(role, "RolePolicyList")))
                  for role in _entries(pages, "RoleDetailList")]
    for user in _entries(pages, "UserDetailList"):
        attachments = own(user, "UserPolicyList")
        member_of = user.get("GroupList")
        for group in member_of if isinstance(member_of, list) else []:
            if str(group) in groups:
                attachments.extend(groups[str(group)])
            else:
                problems.append(f"group {group} of {user.get('Arn')} is missing from the authorization details")
        principals.append(IamPrincipal(str(user.get("Arn")), tuple(attachments)))
    return IamIndex(tuple(principals), tuple(dict.fromkeys(problems)))


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    principal: str
    via: Via
    scope: str
    grant: str
    conditional: bool


@dataclass(frozen=True)
class _Holder:
    principal: str
    account: str | None
    policy: str


class _Coverage:
    """Which statements cover one secret, each evaluated once (managed policies' statements repeat)."""

    def __init__(self, arn: str) -> None:
        self.arn = arn
        self.known: dict[int, tuple[bool, bool]] = {}

    def __call__(self, statement: Statement) -> tuple[bool, bool]:
        found = self.known.get(id(statement))  # statements live as long as the evaluator: ids are stable
        if found is None:
            found = self.known[id(statement)] = statement.covers(self.arn)
        return found


class _Evaluator:
    """Identity statements indexed once per target, evaluated per secret."""

    def __init__(self, principals: Iterable[IamPrincipal]) -> None:
        # Allow statements with everyone holding them, so a secret costs one match per distinct
        # statement (managed policies repeat across principals), not one per principal.
        self.allows: dict[Statement, list[_Holder]] = defaultdict(list)
        self.denies: dict[str, list[tuple[str, Statement]]] = defaultdict(list)
        for principal in principals:
            account = account_root(principal.arn)
            for attached in principal.attachments:
                for statement in attached.statements:
                    if statement.effect is Effect.ALLOW:
                        self.allows[statement].append(_Holder(principal.arn, account, attached.policy))
                    else:
                        self.denies[principal.arn].append((attached.policy, statement))

    def readers(self, secret: ScannedSecret) -> tuple[list[EffectiveReader], tuple[str, ...]]:
        partition, account = _partition_account(secret.arn)
        root = f"arn:{partition}:iam::{account}:root"
        covers = _Coverage(secret.arn)
        candidates = self._identity(covers, root)
        problems: tuple[str, ...] = ()
        denies: list[tuple[str, Statement]] = []
        if not secret.policy_read:
            problems = ("resource policy not read",)
        elif secret.policy:
            parsed = parse(secret.policy, resource_policy=True, partition=partition)
            problems = tuple(f"resource policy: {p}" for p in parsed.problems)
            for statement in parsed.statements:
                covered, variable = covers(statement)
                if not covered:
                    continue
                if statement.effect is Effect.DENY:
                    denies.append(("resource policy", statement))
                    continue
                candidates.extend(_resource_candidates(statement, secret.arn, variable))
        return self._apply_denies(candidates, covers, denies), problems

    def _identity(self, covers: _Coverage, root: str) -> list[_Candidate]:
        candidates = []
        for statement, holders in self.allows.items():
            covered, variable = covers(statement)
            if not covered:
                continue
            for holder in holders:
                if holder.account == root:  # identity policies reach their own account's secrets only
                    candidates.append(_Candidate(holder.principal, Via.ACCOUNT, root,
                                                 f"{holder.policy}, {statement.label}",
                                                 statement.conditional or variable))
        return candidates

    def _apply_denies(self, candidates: Iterable[_Candidate], covers: _Coverage,
                      resource_denies: Sequence[tuple[str, Statement]]) -> list[EffectiveReader]:
        verdicts: dict[str, tuple[bool, tuple[str, ...]]] = {}
        readers = set()
        for candidate in candidates:
            verdict = verdicts.get(candidate.principal)
            if verdict is None:
                verdict = verdicts[candidate.principal] = self._verdict(candidate.principal, covers, resource_denies)
            denied, notes = verdict
            if denied:
                continue
            grant = candidate.grant + (f"; conditionally denied by {'; '.join(notes)}" if notes else "")
            readers.add(EffectiveReader(candidate.principal, candidate.via, candidate.scope, grant,
                                        candidate.conditional or bool(notes)))
        return sorted(readers, key=_order)

    def _verdict(self, principal: str, covers: _Coverage,
                 resource_denies: Sequence[tuple[str, Statement]]) -> tuple[bool, tuple[str, ...]]:
        """Whether a Deny removes ``principal``'s reads of this secret, else the conditional denies that may."""
        if not resource_denies and principal not in self.denies:
            return False, ()  # most principals have no Deny at all
        notes = []
        for policy, statement in (*self.denies.get(principal, ()),
                                  *(d for d in resource_denies
                                    if d[1].principals is not None and d[1].principals.names(principal))):
            covered, variable = covers(statement)
            if not covered:
                continue
            if not (statement.conditional or variable):
                return True, ()
            notes.append(f"{policy}, {statement.label}")
        return False, tuple(dict.fromkeys(notes))  # one deny can reach a user twice (own policy and group)


def _order(reader: EffectiveReader) -> tuple[str, str, str, str, bool]:
    return reader.principal, reader.via.value, reader.scope, reader.grant, reader.conditional


def _partition_account(arn: str) -> tuple[str, str]:
    parts = arn.split(":", 5)
    return (parts[1], parts[4]) if len(parts) == 6 else ("aws", "")


def _resource_candidates(statement: Statement, arn: str, variable: bool) -> list[_Candidate]:
    """The readers one resource-policy Allow statement names."""
    principals = statement.principals
    if principals is None:
        return []
    conditional = statement.conditional or variable
    if principals.negated:
        # NotPrincipal allows everyone but the listed: as broad as "*" for a report.
        return [_Candidate(ANYONE, Via.ACCOUNT, arn, f"resource policy, {statement.label} (NotPrincipal)", conditional)]
    grant = f"resource policy, {statement.label}"
    found = [_Candidate(ANYONE, Via.ACCOUNT, arn, grant, conditional)] if principals.anyone else []
    for principal in sorted(principals.ids):
        # An account's root stands for every principal that account lets through.
        via = Via.ACCOUNT if account_root(principal) == principal else Via.SECRET
        found.append(_Candidate(principal, via, arn, grant, conditional))
    return found


def evaluate_access(pages: Sequence[Mapping[str, Any]], secrets: Sequence[ScannedSecret],
                    reasons: Sequence[str] = ()) -> AccessScan:
    """The readers of each secret from authorization-details pages and the secrets' resource policies (pure)."""
    index = index_principals(pages)
    evaluator = _Evaluator(index.principals)
    readers: dict[str, tuple[EffectiveReader, ...]] = {}
    secret_reasons: dict[str, tuple[str, ...]] = {}
    for secret in secrets:
        found, problems = evaluator.readers(secret)
        readers[secret.name] = tuple(found)
        if problems:
            secret_reasons[secret.name] = problems
    return AccessScan(readers=readers, last_accessed={s.name: s.last_accessed for s in secrets},
                      reasons=(*reasons, *index.problems), secret_reasons=secret_reasons)


def scan_access(iam: Any | None, secrets: Sequence[ScannedSecret], *, counter: Counter[str] | None = None,
                max_pages: int = MAX_PAGES) -> AccessScan:
    """The effective readers of ``secrets`` (one target's), reading IAM with the boto3 client ``iam``.

    ``iam`` None (the target opted out of the scan) evaluates the resource policies only and
    marks the scan incomplete. Calls made: GetAccountAuthorizationDetails pages, nothing else.
    """
    if not secrets:
        return AccessScan(readers={})
    if iam is None:
        return evaluate_access((), secrets, (OPTED_OUT,))
    pages, reasons = read_authorization_details(iam, counter=counter, max_pages=max_pages)
    return evaluate_access(pages, secrets, reasons)

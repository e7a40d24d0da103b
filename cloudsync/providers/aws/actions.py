"""The one table of Secrets Manager API operations the adapter calls.

Everything that depends on *which* calls a code path makes is derived from :data:`ACTIONS`:
the per-operation IAM permissions (:func:`permissions_by_operation`), the least-privilege
policy JSON that ``cloudsync permissions`` prints (:func:`render_policy`), the quota bucket
each call is paced in, and the IAM action named when AWS answers "access denied". The
adapter refuses to call an operation that is missing here, so the table cannot fall behind
the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloudsync.providers.base import OWNER_LABEL, OWNER_VALUE, STACK_LABEL, Operation


class Scope(StrEnum):
    """Which resources an action needs, for the rendered IAM policy."""

    ACCOUNT = "account"  # no resource-level permissions exist (ListSecrets)
    ANY = "any"  # read metadata of any secret (conflicts, eventual-consistency checks)
    OWNED = "owned"  # only secrets tagged as owned by the stack
    NEW = "new"  # creating a secret: the request must carry the stack's ownership tags


class Bucket(StrEnum):
    """AWS Secrets Manager's published request quotas (per account and region): the operation
    families cloudsync paces its calls in (see :mod:`cloudsync.ratelimit`)."""

    LIST = "list"
    DESCRIBE = "describe"
    BATCH = "batch"
    POLICY = "policy"
    WRITE = "write"
    TAG = "tag"
    CREATE = "create"
    DELETE = "delete"
    RESTORE = "restore"
    EVENTS = "events"  # CloudTrail's LookupEvents (the policy-change feed), not Secrets Manager


# Requests per second AWS accepts per family (the Secrets Manager quotas page, "Combined rate
# of ... API requests", none adjustable): DescribeSecret and GetSecretValue are paced together
# in the lower of their buckets (10,000/s); the resource-policy
# calls (Get/Put/Delete/ValidateResourcePolicy) share 50/s; PutSecretValue, UpdateSecret and
# the replication calls share 50/s; RestoreSecret, TagResource+UntagResource, CreateSecret
# and DeleteSecret have 50/s each. BatchGetSecretValue has a family of its own, 100/s. CloudTrail's
# LookupEvents: 2/s per account and region (its API reference: "limited to two per second, per
# account, per Region").
QUOTAS: Mapping[Bucket, float] = {
    Bucket.LIST: 100,
    Bucket.DESCRIBE: 10_000,
    Bucket.BATCH: 100,
    Bucket.POLICY: 50,
    Bucket.WRITE: 50,
    Bucket.TAG: 50,
    Bucket.CREATE: 50,
    Bucket.DELETE: 50,
    Bucket.RESTORE: 50,
    Bucket.EVENTS: 2,
}
READ_BUCKETS = frozenset({Bucket.LIST, Bucket.DESCRIBE, Bucket.BATCH})
# Not Secrets Manager's: a target's ``quotas:`` overrides never apply to it.
FOREIGN_BUCKETS = frozenset({Bucket.EVENTS})
# Every family a plan's apply writes through (GetResourcePolicy shares the policy family).
WRITE_BUCKETS = frozenset(QUOTAS) - READ_BUCKETS


@dataclass(frozen=True)
class ApiAction:
    """One API operation: its quota bucket, the cloudsync operations that use it, its scope."""

    operation: str
    bucket: Bucket
    used_by: frozenset[Operation]
    scope: Scope
    why: str
    service: str = "secretsmanager"

    @property
    def iam_action(self) -> str:
        return f"{self.service}:{self.operation}"


_READ = frozenset(Operation)  # every operation reads the target's metadata
_VALUES = frozenset({Operation.PLAN, Operation.APPLY})
_APPLY = frozenset({Operation.APPLY})

ACTIONS: Mapping[str, ApiAction] = {a.operation: a for a in (
    ApiAction("ListSecrets", Bucket.LIST, _READ, Scope.ACCOUNT, "bulk read of names, tags, versions"),
    ApiAction("DescribeSecret", Bucket.DESCRIBE, _READ, Scope.ANY,
              "confirm creates and deletes that the eventually consistent list suggests"),
    ApiAction("GetResourcePolicy", Bucket.POLICY, _READ, Scope.ANY, "read the readers of a secret"),
    ApiAction("LookupEvents", Bucket.EVENTS, _READ, Scope.ACCOUNT,
              "access_drift: changed: which secrets' resource policies changed (CloudTrail event history)",
              service="cloudtrail"),
    # `cloudsync access --versions` runs with the plan-metadata role (no plan, drift or apply calls it).
    ApiAction("ListSecretVersionIds", Bucket.DESCRIBE, _READ, Scope.OWNED,
              "`cloudsync access --versions`: the versions still enabled (never in a plan)"),
    ApiAction("GetSecretValue", Bucket.DESCRIBE, _VALUES, Scope.OWNED,
              "the stack's fingerprint key and values copied between targets"),
    # AWS authorizes the batch call on "*" only (it takes no resource), then GetSecretValue on
    # each secret it returns: the per-secret grant above is what limits it.
    ApiAction("BatchGetSecretValue", Bucket.BATCH, _VALUES, Scope.ACCOUNT,
              "values copied between targets, up to 20 a call"),
    ApiAction("CreateSecret", Bucket.CREATE, _APPLY, Scope.NEW, "create a declared secret, and the apply lock"),
    ApiAction("TagResource", Bucket.TAG, _APPLY, Scope.NEW, "labels and cloudsync's metadata (also on create)"),
    ApiAction("UntagResource", Bucket.TAG, _APPLY, Scope.OWNED, "remove labels no longer declared"),
    ApiAction("PutSecretValue", Bucket.WRITE, _APPLY, Scope.OWNED, "write a new version"),
    ApiAction("UpdateSecret", Bucket.WRITE, _APPLY, Scope.OWNED, "description and KMS key"),
    ApiAction("UpdateSecretVersionStage", Bucket.WRITE, _APPLY, Scope.OWNED,
              "retire a superseded version: remove its AWSPREVIOUS label"),
    ApiAction("RestoreSecret", Bucket.RESTORE, _APPLY, Scope.OWNED, "bring back a secret scheduled for deletion"),
    ApiAction("ReplicateSecretToRegions", Bucket.WRITE, _APPLY, Scope.NEW, "add replica regions (also on create)"),
    ApiAction("RemoveRegionsFromReplication", Bucket.WRITE, _APPLY, Scope.OWNED, "remove replica regions"),
    ApiAction("PutResourcePolicy", Bucket.POLICY, _APPLY, Scope.OWNED, "grant read to the declared readers"),
    ApiAction("DeleteResourcePolicy", Bucket.POLICY, _APPLY, Scope.OWNED, "no readers left"),
    ApiAction("DeleteSecret", Bucket.DELETE, _APPLY, Scope.OWNED,
              "delete a secret no longer declared, and release the apply lock"),
)}


# The access scan (who can read each secret) reads identity policies once per plan; a target
# with ``access_scan: false`` does not need it.
SCAN_ACTION = "iam:GetAccountAuthorizationDetails"


def _needed(action: ApiAction, operation: Operation, events: bool) -> bool:
    """Whether ``operation`` calls ``action`` (the event feed only under ``access_drift: changed``)."""
    return operation in action.used_by and (events or action.bucket is not Bucket.EVENTS)


def permissions_by_operation(*, access_scan: bool = True, events: bool = True) -> dict[Operation, list[str]]:
    """The IAM actions each cloudsync operation needs, in table order."""
    scan = [SCAN_ACTION] if access_scan else []
    return {op: [*(a.iam_action for a in ACTIONS.values() if _needed(a, op, events)), *scan] for op in Operation}


def _secret_arn(region: str) -> str:
    return f"arn:aws:secretsmanager:{region}:*:secret:*"


def policy_document(operation: Operation, *, stack: str, region: str, replica_regions: Sequence[str] = (),
                    kms_key_id: str | None = None, access_scan: bool = True, events: bool = True) -> dict[str, Any]:
    """A least-privilege IAM policy for cloudsync's own identity doing ``operation``."""
    regions = [region, *replica_regions] if operation is Operation.APPLY else [region]
    by_scope: dict[Scope, list[str]] = {}
    feed: list[str] = []
    for action in ACTIONS.values():
        if _needed(action, operation, events):
            (feed if action.service != "secretsmanager" else by_scope.setdefault(action.scope, [])).append(
                action.iam_action)
    owned = {"StringEquals": {f"secretsmanager:ResourceTag/{OWNER_LABEL}": OWNER_VALUE,
                              f"secretsmanager:ResourceTag/{STACK_LABEL}": stack}}
    resources = [_secret_arn(r) for r in regions]
    statements: list[dict[str, Any]] = []
    if Scope.ACCOUNT in by_scope:
        statements.append({"Sid": "ListSecrets", "Effect": "Allow", "Action": by_scope[Scope.ACCOUNT],
                           "Resource": "*"})
    if feed:
        # CloudTrail's event history has no resource-level permissions either.
        statements.append({"Sid": "LookupPolicyChanges", "Effect": "Allow", "Action": feed, "Resource": "*"})
    if Scope.ANY in by_scope:
        statements.append({"Sid": "ReadMetadata", "Effect": "Allow", "Action": by_scope[Scope.ANY],
                           "Resource": resources})
    if Scope.OWNED in by_scope or Scope.NEW in by_scope:
        # Actions on existing secrets are limited to the ones carrying the stack's ownership tags.
        statements.append({"Sid": "ManageOwnedSecrets", "Effect": "Allow",
                           "Action": sorted({*by_scope.get(Scope.OWNED, []), *by_scope.get(Scope.NEW, [])}),
                           "Resource": resources, "Condition": owned})
    if Scope.NEW in by_scope:
        # A new secret has no tags yet: the create request itself must tag it as the stack's.
        statements.append({"Sid": "CreateOwnedSecrets", "Effect": "Allow", "Action": by_scope[Scope.NEW],
                           "Resource": resources,
                           "Condition": {"StringEquals": {f"aws:RequestTag/{OWNER_LABEL}": OWNER_VALUE,
                                                          f"aws:RequestTag/{STACK_LABEL}": stack}}})
    if access_scan:
        # IAM has no resource-level permission for this read: it is account-wide by nature.
        statements.append({"Sid": "ScanWhoCanRead", "Effect": "Allow", "Action": [SCAN_ACTION], "Resource": "*"})
    if kms_key_id and operation is not Operation.PLAN_METADATA:
        # A customer-managed key must let the caller encrypt (apply) and decrypt (values).
        kms_actions = ["kms:Decrypt"] + (["kms:GenerateDataKey"] if operation is Operation.APPLY else [])
        key_resource = kms_key_id if kms_key_id.startswith("arn:") else "*"
        statement: dict[str, Any] = {"Sid": "UseKmsKey", "Effect": "Allow", "Action": kms_actions,
                                     "Resource": key_resource,
                                     "Condition": {"StringEquals": {"kms:ViaService": [
                                         f"secretsmanager.{r}.amazonaws.com" for r in regions]}}}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def render_policy(config: Any, stack: str) -> str:
    """``cloudsync permissions`` output: one IAM policy per operation, plus notes."""
    kms = getattr(config, "kms_key_id", None)
    scan = bool(getattr(config, "access_scan", True))
    events = getattr(config, "access_drift", "changed") == "changed"
    replicas = list(getattr(config, "replica_regions", []) or [])
    notes = [
        "plan-metadata serves `plan --metadata-only` and `drift`: it reads no value.",
        "GetSecretValue is limited to the stack's own secrets (its fingerprint key and values copied "
        "between targets); a `from:` source outside the stack needs its own grant.",
        "BatchGetSecretValue takes no resource (AWS accepts it only on \"*\"); it returns only the secrets "
        "the identity may GetSecretValue, so it widens nothing.",
        f"{SCAN_ACTION} finds every principal that can read a secret through identity policies; set "
        "access_scan: false on the target where cloudsync may not read IAM (readers then show as unknown)."
        if scan else "access_scan is false: readers through identity policies are not scanned (shown as unknown).",
        "cloudtrail:LookupEvents (access_drift: changed, the default) finds resource-policy changes in CloudTrail's "
        "event history; without it a plan still works, reading every owned secret's policy instead."
        if events else "access_drift is not changed: CloudTrail's event history is not read.",
        "secretsmanager:ListSecretVersionIds serves `cloudsync access --versions` (plan-metadata role).",
    ]
    if kms and not kms.startswith("arn:"):
        notes.append(f"kms_key_id {kms!r} is not an ARN: replace the KMS statement's '*' with the key's ARN.")
    if getattr(config, "role_arn", None):
        notes.append(f"these policies belong to {config.role_arn}; the identity running cloudsync needs "
                     "sts:AssumeRole on it.")
    document = {
        "provider": "aws",
        "stack": stack,
        "region": config.region,
        "policies": {op.value: policy_document(op, stack=stack, region=config.region, replica_regions=replicas,
                                               kms_key_id=kms, access_scan=scan, events=events)
                     for op in Operation},
        "notes": notes,
    }
    return json.dumps(document, indent=2)

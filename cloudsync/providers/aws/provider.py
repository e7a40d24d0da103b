"""The ``aws`` target kind: AWS Secrets Manager through boto3 (see docs/providers/aws.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from cloudsync.providers.access import AccessScan
from cloudsync.providers.aws.access import scan_access, scanned_secret
from cloudsync.providers.aws.actions import permissions_by_operation, render_policy
from cloudsync.providers.aws.calls import SecretsManagerApi, pacer
from cloudsync.providers.aws.client import make_client, make_cloudtrail_client, make_iam_client, make_session
from cloudsync.providers.aws.lock import AwsTargetLock
from cloudsync.providers.aws.marks import stamp_marks
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.remote import STAGE
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.aws.values import ValueReader
from cloudsync.providers.aws.write import Writer
from cloudsync.providers.base import (
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    VersionInfo,
)
from cloudsync.ratelimit import DEFAULT_HEADROOM
from cloudsync.values.secret import SecretValue

log = logging.getLogger("cloudsync")


class AwsProvider(Provider[AwsTarget]):
    """One AWS account and region."""

    kind = "aws"
    # Every call is paced in its quota family by SecretsManagerApi (a create costs one token in
    # each of the create, write and policy families): the engine only bounds changes in flight,
    # enough to keep each 50/s family busy at AWS's ~50-100 ms per call.
    limits = RateLimits(max_parallel=16)
    quota_scale: ClassVar[float] = DEFAULT_HEADROOM  # share of each published quota, unless the target says

    def __init__(self, target: str, config: AwsTarget, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.session = make_session(target, config)
        self.client = make_client(target, config, self.session)
        self._iam: Any = None
        buckets = pacer((config.endpoint, config.region, config.profile, config.role_arn), config.quotas,
                        self.quota_scale)
        self.api = SecretsManagerApi(target, self.client, buckets, self.api_calls)
        self.trail: Any = None
        events = None
        if config.access_drift == "changed" and not context.full_refresh:
            self.trail = make_cloudtrail_client(target, config, self.session)
            events = SecretsManagerApi(target, self.trail, buckets, self.api_calls)
        self.reader = StateReader(self.api, config.region, list(config.replica_regions), self.limits.max_parallel,
                                  config.access_drift, config.list_filter, events=events,
                                  full=context.full_refresh)
        self.writes = Writer(self.api, self.reader, config)
        self.writer = self.writes
        self.values = ValueReader(self.api)

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        return self.reader.read(query)

    def scan_access(self, query: ReadQuery, secrets: Sequence[RemoteSecret]) -> AccessScan:
        """Identity policies (one paginated GetAccountAuthorizationDetails) and the resource
        policies the read already fetched, evaluated for GetSecretValue on each secret."""
        live = {s.name for s in secrets if not s.deleted}
        scanned = [scanned_secret(entry, self.reader.last_policies.get(name),
                                  policy_read=name in self.reader.last_policies)
                   for name, entry in self.reader.last_entries.items() if name in live]
        if self.config.access_scan and self._iam is None:
            self._iam = make_iam_client(self.target, self.config, self.session)
        scan = scan_access(self._iam if self.config.access_scan else None, scanned, counter=self.api_calls)
        if self.reader.notes or self.values.notes:
            scan = replace(scan, notes=tuple(dict.fromkeys((*scan.notes, *self.reader.notes, *self.values.notes))))
        return scan

    def versions(self, name: str) -> Sequence[VersionInfo] | None:
        """ListSecretVersionIds (deprecated versions left out: no staging label reaches them)."""
        found: list[VersionInfo] = []
        params: dict[str, Any] = {"SecretId": name, "MaxResults": 100}
        while True:
            page = self.api.call("ListSecretVersionIds", name=name, idempotent=True, **params)
            for v in page.get("Versions", []):
                stages = v.get("VersionStages") or []
                found.append(VersionInfo(str(v["VersionId"]), v.get("CreatedDate"), enabled=bool(stages),
                                         by_cloudsync=True if STAGE in stages else None))
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        return sorted(found, key=lambda v: v.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)

    def read_value(self, name: str) -> SecretValue:
        return self.values.read_one(name)

    def read_values(self, names: Sequence[str]) -> Mapping[str, SecretValue | ProviderError]:
        """``BatchGetSecretValue``, 20 names a call (see :mod:`cloudsync.providers.aws.values`)."""
        return self.values.read_many(names)

    def target_lock(self) -> AwsTargetLock:
        """The target's apply lock: a marker secret only one apply can create, held as a lease.

        Before it is released, the apply stamps sync marks where its plan found a secret in sync
        without one (:mod:`.marks`), so an estate from before the marks converges to cheap plans.
        """
        return AwsTargetLock(self.api, self.reader, self.target, self.context.stack, before_release=self._bookkeeping)

    def _bookkeeping(self) -> None:
        if self.config.access_drift != "changed":
            return
        try:
            stamped = stamp_marks(self.api, self.reader, self.writes.written, self.context.stack, self.config.region,
                                  self.limits.max_parallel)
        except ProviderError as exc:  # bookkeeping only: the next apply tries again
            log.warning("target %s: could not record sync marks (%s); plans keep reading those policies directly",
                        self.target, exc.message)
            return
        if stamped:
            log.info("target %s: recorded the sync mark of %d secret(s) whose resource policy the plan read "
                     "and found without readers; later plans ask CloudTrail about them instead", self.target, stamped)

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return permissions_by_operation()

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str, target: str) -> str:
        """The least-privilege IAM policy JSON per operation, for ``cloudsync permissions``."""
        return render_policy(target_config, stack_name)

    def close(self) -> None:
        self.client.close()
        if self.trail is not None:
            self.trail.close()
        if self._iam is not None:
            self._iam.close()

"""The ``aws`` target kind: AWS Secrets Manager through boto3 (see docs/providers/aws.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from cloudsync.providers.aws.actions import HEADROOM, permissions_by_operation, render_policy
from cloudsync.providers.aws.api import SecretsManagerApi, is_not_found, pacer
from cloudsync.providers.aws.connect import make_client
from cloudsync.providers.aws.lock import AwsTargetLock
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.write import Writer
from cloudsync.providers.base import (
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    ValueRecord,
    WriteRequest,
)
from cloudsync.values.secret import SecretValue


class AwsProvider(Provider):
    """One AWS account and region."""

    kind = "aws"
    # Changes per second: a change makes about one call in each of the 50-TPS write buckets
    # (create / value+metadata / policy / tags), and the calls themselves are paced per
    # bucket in SecretsManagerApi, so this only keeps the engine from queueing far ahead.
    limits = RateLimits(reads_per_second=80.0, writes_per_second=40.0, max_parallel=16)
    quota_scale: ClassVar[float] = HEADROOM  # share of each published quota this process uses

    def __init__(self, target: str, config: Any, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.client = make_client(target, config)
        buckets = pacer((config.endpoint, config.region, config.profile, config.role_arn), self.quota_scale)
        self.api = SecretsManagerApi(target, self.client, buckets, self.api_calls)
        self.reader = StateReader(self.api, config.region, list(config.replica_regions), self.limits.max_parallel,
                                  config.access_drift)
        self.writer = Writer(self.api, self.reader, config)

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        return self.reader.read(query)

    def apply(self, request: WriteRequest) -> ValueRecord | None:
        return self.writer.apply(request)

    def read_value(self, name: str) -> SecretValue:
        try:
            response = self.api.call("GetSecretValue", name=name, idempotent=True, SecretId=name)
        except ProviderError as exc:
            if is_not_found(exc):  # no such secret, or no current version: absence, not failure
                raise NotFoundError(exc.message, code=exc.code) from None
            raise
        if response.get("SecretString") is not None:
            return SecretValue(response["SecretString"])
        if response.get("SecretBinary") is not None:
            return SecretValue(response["SecretBinary"])
        raise ProviderError(f"GetSecretValue {name}: the secret has no value", code="NoValue")

    def target_lock(self) -> AwsTargetLock:
        """The target's apply lock: a marker secret only one apply can create, held as a lease."""
        return AwsTargetLock(self.api, self.reader, self.target, self.context.stack)

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return permissions_by_operation()

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str) -> str:
        """The least-privilege IAM policy JSON per operation, for ``cloudsync permissions``."""
        return render_policy(target_config, stack_name)

    def close(self) -> None:
        self.client.close()

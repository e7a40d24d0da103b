"""The ``gcp`` target kind: GCP Secret Manager through ``google-cloud-secret-manager``.

Reads in bulk (:mod:`.reader`), writes one change at a time (:mod:`.writes`), paces and
retries every RPC (:mod:`.calls`), holds an apply lock in the project (:mod:`.lock`) and
declares its permissions from one table (:mod:`.catalog`). See docs/providers/gcp.md.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

from google.cloud import secretmanager

from cloudsync.providers.base import (
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    SecretState,
    ValueRecord,
    WriteRequest,
    fingerprint_key_name,
    now,
)
from cloudsync.providers.gcp.calls import Caller, QuotaLimits, backoff
from cloudsync.providers.gcp.catalog import permissions_for
from cloudsync.providers.gcp.connection import open_client
from cloudsync.providers.gcp.lock import target_lock
from cloudsync.providers.gcp.payload import crc32c
from cloudsync.providers.gcp.permissions import render_permissions
from cloudsync.providers.gcp.reader import read_secrets
from cloudsync.providers.gcp.writes import Writer
from cloudsync.values.secret import SecretValue

T = TypeVar("T")
KEY_ATTEMPTS = 6


class GcpProvider(Provider):
    """One GCP project (or one location of it, for regional secrets)."""

    kind = "gcp"
    # The engine's per-change limiter; every RPC is additionally paced to ``quota`` by the Caller.
    limits = RateLimits(reads_per_second=9.0, writes_per_second=9.0, max_parallel=8)
    # Secret Manager's published per-project quotas. A project with raised quotas (or the
    # benchmark against the fake) may replace this on the class.
    quota: ClassVar[QuotaLimits] = QuotaLimits()

    def __init__(self, target: str, config: Any, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.client = open_client(config)
        self.parent = f"projects/{config.project}" + (f"/locations/{config.location}" if config.location else "")
        quota = self.quota
        if config.reads_per_minute or config.writes_per_minute:  # a project with raised quotas
            quota = replace(quota, reads_per_minute=config.reads_per_minute or quota.reads_per_minute,
                            writes_per_minute=config.writes_per_minute or quota.writes_per_minute)
        self.caller = Caller(target, config.project, quota, self.api_calls)
        self.writer = Writer(self.client, self.caller, self.parent, config)

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        return read_secrets(self.client, self.caller, self.parent, query, self.limits.max_parallel)

    def apply(self, request: WriteRequest) -> ValueRecord | None:
        return self.writer.apply(request)

    def read_value(self, name: str) -> SecretValue:
        """The value of ``versions/latest``; NotFoundError when absent, ProviderError when disabled or corrupted."""
        full = self.writer.full_name(name)
        request = secretmanager.AccessSecretVersionRequest(name=f"{full}/versions/latest")
        try:
            response = self.caller("AccessSecretVersion", self.client.access_secret_version, request, resource=full)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                raise NotFoundError(f"secret {name} not found in the target, or it has no version",
                                    code="NOT_FOUND") from None
            raise
        data = bytes(response.payload.data)
        if "data_crc32c" in response.payload and response.payload.data_crc32c != crc32c(data):
            raise ProviderError(f"the value of {name} arrived corrupted (CRC32C mismatch)", code="DATA_LOSS",
                                transient=True)
        return SecretValue(data)

    def fingerprint_key(self, *, create: bool) -> bytes | None:
        """Like the base, but only NOT_FOUND means "no key yet" and transient errors are retried.

        The base treats any error reading the key as absence and writes a new key; after a
        mere UNAVAILABLE that would replace the key and make every stored fingerprint stale.
        """
        name = fingerprint_key_name(self.context.stack)
        try:
            return self._retrying(lambda: self.read_value(name).reveal())
        except ProviderError as exc:
            if exc.code != "NOT_FOUND":
                raise
        if not create:
            return None
        value = SecretValue(secrets.token_hex(32))
        request = WriteRequest(
            action="create", reasons=frozenset({"value"}), stack=self.context.stack, name=name,
            state=SecretState(name=name, labels={}, expires_at=None, readers=None,
                              description="cloudsync fingerprint key (HMAC key for value fingerprints)"),
            value=value, record=ValueRecord(written_at=now()), before=None,
            token=f"fpkey-{self.context.stack}-{secrets.token_hex(8)}")  # progress belongs to this value only
        self._retrying(lambda: self.apply(request))  # a retry resumes the same write (see Writer)
        return value.reveal()

    def _retrying(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except ProviderError as exc:
                if not exc.transient or attempt >= KEY_ATTEMPTS:
                    raise
                self.caller.sleep(backoff(attempt, exc.retry_after))

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return {operation: permissions_for(operation) for operation in Operation}

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str) -> str:
        return render_permissions(target_config, stack_name)

    def lock(self, holder: str) -> contextlib.AbstractContextManager[None]:
        return target_lock(self.client, self.caller, self.parent, self.config, self.target, self.context.stack,
                           holder)

    def close(self) -> None:
        self.client.transport.close()

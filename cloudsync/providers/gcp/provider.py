"""The ``gcp`` target kind: GCP Secret Manager through ``google-cloud-secret-manager``.

Reads in bulk (:mod:`.read`, with Cloud Asset Inventory's index, :mod:`.inventory`), writes one
change at a time (:mod:`.write`), scans who can
read each secret through project, folder and organization IAM policies (:mod:`.access`),
paces and retries every RPC (:mod:`.calls`), holds an apply lock in the project
(:mod:`.lock`) and declares its permissions from one table (:mod:`.catalog`). See
docs/providers/gcp.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from google.cloud import secretmanager

from cloudsync.providers.access import AccessScan
from cloudsync.providers.base import (
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    ProviderError,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    VersionInfo,
)
from cloudsync.providers.gcp.access import AccessScanner
from cloudsync.providers.gcp.calls import Caller, QuotaLimits
from cloudsync.providers.gcp.catalog import permissions_for
from cloudsync.providers.gcp.client import open_client
from cloudsync.providers.gcp.inventory import sweep
from cloudsync.providers.gcp.lock import GcpTargetLock
from cloudsync.providers.gcp.payload import crc32c
from cloudsync.providers.gcp.permissions import render_permissions
from cloudsync.providers.gcp.read import Indexed, read_secrets
from cloudsync.providers.gcp.rules import GcpTarget
from cloudsync.providers.gcp.scan_clients import ScanClients
from cloudsync.providers.gcp.write import Writer
from cloudsync.values.secret import SecretValue

log = logging.getLogger("cloudsync")


class GcpProvider(Provider[GcpTarget]):
    """One GCP project (or one location of it, for regional secrets)."""

    kind = "gcp"
    # The engine's per-change limiter; every RPC is additionally paced to ``quota`` by the Caller.
    limits = RateLimits(writes_per_second=9.0, max_parallel=8)
    # Secret Manager's published per-project quotas. A project with raised quotas (or the
    # benchmark against the fake) may replace this on the class.
    quota: ClassVar[QuotaLimits] = QuotaLimits()
    writer: Writer

    def __init__(self, target: str, config: GcpTarget, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.client = open_client(config)
        self.parent = f"projects/{config.project}" + (f"/locations/{config.location}" if config.location else "")
        quota = self.quota
        if config.reads_per_minute or config.writes_per_minute:  # a project with raised quotas
            quota = replace(quota, reads_per_minute=config.reads_per_minute or quota.reads_per_minute,
                            writes_per_minute=config.writes_per_minute or quota.writes_per_minute)
        self.caller = Caller(target, config.project, quota, self.api_calls)
        self.writer = Writer(self.client, self.caller, self.parent, config)
        self.scan_clients = ScanClients(config)
        self.notes: list[str] = []  # how this target was read, for the access scan's notes

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        # Regional secrets are other asset types (not documented for the index): read directly.
        # --refresh full reads as inventory: false does.
        index = (self._index if self.config.inventory and not self.config.location and not self.context.full_refresh
                 else None)
        return read_secrets(self.client, self.caller, self.parent, query, self.limits.max_parallel, index)

    def _index(self) -> Indexed | None:
        """The asset index, or None (and a note) when it cannot be read: the read then falls back to
        direct reads, as complete as ever, only slower, so a missing permission never fails a plan."""
        try:
            found = sweep(self.scan_clients, self.caller, self.config.project)
        except ProviderError as exc:
            note = (f"Cloud Asset Inventory could not be read ({exc.message}); every owned secret's IAM policy and "
                    "latest version were read directly instead (two calls per secret)")
            log.warning("target %s: %s", self.target, note)
            self.notes.append(note)
            return None
        return found, timedelta(minutes=self.config.inventory_lag_minutes)

    def scan_access(self, query: ReadQuery, secrets: Sequence[RemoteSecret]) -> AccessScan:
        """The secrets' own policies (read already), the project's, and the ancestors' when asked:
        one call per policy plus one per role IAM is asked about, whatever the number of secrets."""
        scan = AccessScanner(self.config, self.caller, self.scan_clients, self.parent).scan(secrets)
        return replace(scan, notes=tuple(dict.fromkeys((*scan.notes, *self.notes)))) if self.notes else scan

    def versions(self, name: str) -> Sequence[VersionInfo] | None:
        """ListSecretVersions, paginated (versions carry no labels: who wrote one cannot be told)."""
        full = self.writer.full_name(name)
        found: list[VersionInfo] = []
        token = ""
        while True:
            request = secretmanager.ListSecretVersionsRequest(parent=full, page_size=1000, page_token=token)
            page = self.caller("ListSecretVersions", self.client.list_secret_versions, request, resource=full)
            for v in page.versions:
                created = v.create_time if isinstance(v.create_time, datetime) and v.create_time.year > 1970 else None
                found.append(VersionInfo(v.name.rsplit("/", 1)[-1], created,
                                         enabled=v.state == secretmanager.SecretVersion.State.ENABLED))
            token = page.next_page_token
            if not token:
                return sorted(found, key=lambda v: int(v.version), reverse=True)

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

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return {operation: permissions_for(operation) for operation in Operation}

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str, target: str) -> str:
        return render_permissions(target_config, stack_name)

    def target_lock(self) -> GcpTargetLock:
        return GcpTargetLock(self.client, self.caller, self.parent, self.config, self.target, self.context.stack)

    def close(self) -> None:
        self.scan_clients.close()
        self.client.transport.close()

"""The ``azure`` provider: Azure Key Vault secrets, readers as per-secret RBAC role assignments.

Thin by design: :mod:`.client` builds the SDK clients, :mod:`.read` reads a vault in
bulk, :mod:`.write` applies one change, :mod:`.rbac` manages readers, :mod:`.access` finds
everyone who can read (with :mod:`.roles`), :mod:`.tags` maps cloudsync's metadata onto Key
Vault tags, :mod:`.permissions` declares what each operation needs, and :mod:`.errors` turns
SDK exceptions into one-line :class:`ProviderError`\\ s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from cloudsync.providers.access import AccessScan
from cloudsync.providers.azure import permissions as _permissions
from cloudsync.providers.azure.access import NO_SCOPE, OPTED_OUT, AccessScanner, known_readers
from cloudsync.providers.azure.client import AzureClients, rbac_scope
from cloudsync.providers.azure.errors import azure_call
from cloudsync.providers.azure.lock import AzureTargetLock
from cloudsync.providers.azure.rbac import Readers
from cloudsync.providers.azure.read import StateReader
from cloudsync.providers.azure.rules import AzureTarget
from cloudsync.providers.azure.write import SecretWriter
from cloudsync.providers.base import (
    NotFoundError,
    Operation,
    Provider,
    ProviderContext,
    RateLimits,
    ReadQuery,
    RemoteSecret,
    VersionInfo,
    decode_meta,
)
from cloudsync.ratelimit import DEFAULT_HEADROOM
from cloudsync.values.secret import SecretValue


class AzureProvider(Provider[AzureTarget]):
    """One Azure Key Vault (RBAC permission model)."""

    kind = "azure"
    # Every vault request is paced to the vault's quotas (4,000 transactions and 300 creates per
    # 10 s) in the client pipeline (pacing.py); the engine only bounds changes in flight.
    limits = RateLimits(max_parallel=16)
    quota_scale: ClassVar[float] = DEFAULT_HEADROOM  # share of each published quota, unless the target says

    def __init__(self, target: str, config: AzureTarget, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.clients = AzureClients(config, self.api_calls, self.quota_scale)
        authorization, scope = self.clients.authorization, self.clients.scope
        readers = Readers(authorization, scope) if authorization is not None and scope is not None else None
        self.reader = StateReader(self.clients.secrets, readers)
        self.writer = SecretWriter(self.clients.secrets, self.reader, readers)
        self.readers = readers

    def close(self) -> None:
        self.clients.close()

    def target_lock(self) -> AzureTargetLock:
        return AzureTargetLock(self.clients.secrets, self.target, self.context.stack)

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        return self.reader.read(query)

    def scan_access(self, query: ReadQuery, secrets: Sequence[RemoteSecret]) -> AccessScan:
        """Everyone who can read each secret: role assignments at every scope, or the access policies.

        Reuses the role assignments :meth:`read` listed; adds a vault read unless that read showed
        the RBAC model, and one read per distinct role that is not a common built-in (see
        :mod:`.access`). Opted out or without the vault's ARM scope, the per-secret readers
        :meth:`read` found are all that is known: incomplete.
        """
        names = [s.name for s in secrets if not s.deleted]
        clients = self.clients
        if not self.config.access_scan or self.readers is None or clients.authorization is None \
                or clients.vaults is None or clients.scope is None:
            why = OPTED_OUT if not self.config.access_scan else NO_SCOPE
            return AccessScan(readers=known_readers(secrets, clients.scope), reasons=(why,))
        assignments = self.reader.assignments
        if assignments is None:  # no read before this scan: list them now
            assignments = self.reader.assignments = self.readers.assignments()
        return AccessScanner(clients.authorization, clients.vaults, clients.scope).scan(
            names, assignments, rbac_seen=self.reader.rbac_seen)

    def versions(self, name: str) -> Sequence[VersionInfo] | None:
        """One paginated versions listing (25 a page); each version's tags say whether cloudsync wrote it."""
        listed = self.reader.versions(name)
        found = [VersionInfo(v.version or "", datetime.fromtimestamp(int(v.created), UTC) if v.created else None,
                             enabled=v.enabled is not False, by_cloudsync=decode_meta(v.tags).managed)
                 for v in listed]
        return sorted(found, key=lambda v: v.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)

    def read_value(self, name: str) -> SecretValue:
        with azure_call("get_secret", name):
            secret = self.clients.secrets.get_secret(name)
        if secret.value is None:
            raise NotFoundError(f"{name} has no value", code="NotFound")
        return SecretValue(secret.value)

    @classmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        return _permissions.permissions()

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str, target: str) -> str:
        scope = rbac_scope(target_config) if isinstance(target_config, AzureTarget) else None
        return _permissions.render(getattr(target_config, "vault_url", "?"), scope.vault_scope if scope else None,
                                   stack_name, access_scan=getattr(target_config, "access_scan", True))

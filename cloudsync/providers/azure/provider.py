"""The ``azure`` provider: Azure Key Vault secrets, readers as per-secret RBAC role assignments.

Thin by design: :mod:`.client` builds the SDK clients, :mod:`.read` reads a vault in
bulk, :mod:`.write` applies one change, :mod:`.rbac` manages readers, :mod:`.tags` maps
cloudsync's metadata onto Key Vault tags, :mod:`.permissions` declares what each operation
needs, and :mod:`.errors` turns SDK exceptions into one-line :class:`ProviderError`\\ s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cloudsync.providers.azure import permissions as _permissions
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
)
from cloudsync.values.secret import SecretValue


class AzureProvider(Provider[AzureTarget]):
    """One Azure Key Vault (RBAC permission model)."""

    kind = "azure"
    # Key Vault allows 4,000 operations and 300 creates per 10 s per vault. A change costs
    # 2-5 calls and at most one create, so 25 changes/s stays under both with headroom.
    limits = RateLimits(writes_per_second=25.0, max_parallel=16)

    def __init__(self, target: str, config: AzureTarget, context: ProviderContext) -> None:
        super().__init__(target, config, context)
        self.clients = AzureClients(config, self.api_calls)
        authorization, scope = self.clients.authorization, self.clients.scope
        readers = Readers(authorization, scope) if authorization is not None and scope is not None else None
        self.reader = StateReader(self.clients.secrets, readers)
        self.writer = SecretWriter(self.clients.secrets, self.reader, readers)

    def close(self) -> None:
        self.clients.close()

    def target_lock(self) -> AzureTargetLock:
        return AzureTargetLock(self.clients.secrets, self.target, self.context.stack)

    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        return self.reader.read(query)

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
        return _permissions.render(getattr(target_config, "vault_url", "?"),
                                   scope.vault_scope if scope else None, stack_name)

"""The Azure SDK clients of one target: credential, Key Vault data plane, ARM authorization and
ARM Key Vault management (the vault resource, read by the access scan).

``vault_url`` is the data plane; ``arm_endpoint`` is every Resource Manager call, whichever
resource provider serves it (role assignments and definitions, the vault resource): ARM is
one front door per cloud, so one override points all of them at a sovereign cloud or an
emulator, with that endpoint as the token audience.

Relaxations exist only for loopback hosts (an emulator or a test fake on 127.0.0.1): the
Key Vault challenge-resource check and Entra instance discovery. TLS is never turned off;
trust for a private CA comes from the standard ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient
from requests import Session
from requests.adapters import HTTPAdapter

from cloudsync.providers.azure.pacing import VaultPacing, vault_buckets
from cloudsync.providers.azure.rules import AzureTarget
from cloudsync.providers.base import ProviderError
from cloudsync.providers.base import is_loopback as is_loopback_host
from cloudsync.ratelimit import DEFAULT_HEADROOM

PUBLIC_ARM = "https://management.azure.com"
POOL_SIZE = 32  # above the apply engine's parallelism, so connections are reused, not dropped

# azure-core retries 429 (honouring Retry-After), 408, 5xx and connection errors. Reads (plan)
# have no other retry layer, so they get more attempts; writes pass WRITE_RETRIES per call
# because the apply engine retries a failed change again (6 attempts), and the two multiply.
READ_RETRIES: dict[str, Any] = {"retry_total": 8, "retry_status": 8, "retry_backoff_factor": 0.5, "retry_backoff_max": 30}
WRITE_RETRIES: dict[str, Any] = {"retry_total": 2, "retry_status": 2}


def is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def _https(url: str, field: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ProviderError(f"{field} {url!r} must be an https URL",
                            hint="Azure accepts bearer tokens over TLS only, even on loopback; "
                                 "trust a private CA with REQUESTS_CA_BUNDLE")
    return url.rstrip("/")


def operation_of(method: str, url: str) -> str:
    """A stable name for one REST call, for the per-operation call counts."""
    path = urlsplit(url).path.rstrip("/").lower()
    parts = path.split("/")
    if "/providers/microsoft.authorization/roleassignments" in path:
        tail = path.rsplit("/roleassignments", 1)[1]
        return {"GET": "list_role_assignments" if not tail else "get_role_assignment",
                "PUT": "create_role_assignment", "DELETE": "delete_role_assignment"}.get(method, method.lower())
    if "/providers/microsoft.authorization/roledefinitions" in path and method == "GET":
        return "get_role_definition" if path.rsplit("/roledefinitions", 1)[1] else "list_role_definitions"
    if "/providers/microsoft.keyvault/vaults/" in path and method == "GET":
        return "get_vault"
    if path.startswith("/deletedsecrets"):
        if path.endswith("/recover"):
            return "recover_secret"
        if len(parts) == 2:
            return "list_deleted_secrets"
        return {"GET": "get_deleted_secret", "DELETE": "purge_secret"}.get(method, method.lower())
    if path.startswith("/secrets"):
        if len(parts) == 2:
            return "list_secrets"
        if path.endswith("/versions"):
            return "list_secret_versions"
        return {"GET": "get_secret", "PUT": "set_secret", "PATCH": "update_secret",
                "DELETE": "delete_secret"}.get(method, method.lower())
    return method.lower()


class CallCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts logical calls (pages included, retries and auth challenges not) by operation."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self.lock = threading.Lock()

    def on_request(self, request: PipelineRequest[Any]) -> None:
        name = operation_of(request.http_request.method, request.http_request.url)
        with self.lock:
            self.counts[name] += 1


@dataclass(frozen=True)
class RbacScope:
    """Where per-secret role assignments live: ``<vault scope>/secrets/<name>``."""

    subscription_id: str
    resource_group: str
    vault_name: str

    @property
    def vault_scope(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.KeyVault/vaults/{self.vault_name}")

    def secret(self, name: str) -> str:
        return f"{self.vault_scope}/secrets/{name}"


def rbac_scope(config: AzureTarget) -> RbacScope | None:
    """The vault's ARM scope, or None when the target does not name it (readers then unmanaged)."""
    vault_name = config.vault_name
    if vault_name is None and not is_loopback(config.vault_url):
        vault_name = (urlsplit(config.vault_url).hostname or "").split(".", 1)[0] or None
    if not (config.subscription_id and config.resource_group and vault_name):
        return None
    return RbacScope(config.subscription_id, config.resource_group, vault_name)


def quiet_sdk_logs() -> None:
    """Keep the SDKs' own warnings (azure-identity logs every failed credential chain in several
    lines) out of cloudsync's output; errors reach the user once, as a diagnostic. A level the
    user configured explicitly is left alone."""
    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


def _transport() -> RequestsTransport:
    session = Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=True)


def _credential(config: AzureTarget) -> DefaultAzureCredential:
    options: dict[str, Any] = {}
    if config.authority_endpoint:
        authority = _https(config.authority_endpoint, "authority_endpoint")
        options["authority"] = authority
        # Instance discovery validates the authority against Entra's public list; an
        # emulator's authority on loopback is not on it.
        options["disable_instance_discovery"] = is_loopback(authority)
    if config.tenant_id:
        for key in ("workload_identity_tenant_id", "shared_cache_tenant_id", "visual_studio_code_tenant_id",
                    "interactive_browser_tenant_id", "broker_tenant_id"):
            options[key] = config.tenant_id
    return DefaultAzureCredential(**options)


class AzureClients:
    """The clients of one target, created without any network call; closed together."""

    def __init__(self, config: AzureTarget, counts: Counter[str], pacing_headroom: float = DEFAULT_HEADROOM) -> None:
        vault_url = _https(config.vault_url, "vault_url")
        quiet_sdk_logs()
        self.scope = rbac_scope(config)
        counter = CallCounter(counts)
        self.credential = _credential(config)
        self.secrets = SecretClient(
            vault_url, self.credential, transport=_transport(), per_call_policies=[counter],
            # The challenge names https://vault.azure.net; an emulator on loopback cannot match it.
            verify_challenge_resource=not is_loopback(vault_url),
            per_retry_policies=[VaultPacing(vault_buckets(vault_url, config.quotas, pacing_headroom))],
            **READ_RETRIES,
        )
        self.authorization: AuthorizationManagementClient | None = None
        self.vaults: KeyVaultManagementClient | None = None
        if self.scope is not None:
            arm = _https(config.arm_endpoint, "arm_endpoint") if config.arm_endpoint else PUBLIC_ARM
            options: dict[str, Any] = {"base_url": arm, "per_call_policies": [counter],
                                       "credential_scopes": [f"{arm}/.default"], **READ_RETRIES}
            self.authorization = AuthorizationManagementClient(
                self.credential, self.scope.subscription_id, transport=_transport(), **options)
            self.vaults = KeyVaultManagementClient(
                self.credential, self.scope.subscription_id, transport=_transport(), **options)

    def close(self) -> None:
        self.secrets.close()
        if self.authorization is not None:
            self.authorization.close()  # type: ignore[no-untyped-call]
        if self.vaults is not None:
            self.vaults.close()
        self.credential.close()

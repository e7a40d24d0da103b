"""Key Vault calls paced to the vault's published transaction quota.

Microsoft publishes two quotas for secrets, per vault and region: 300 secret CREATE
transactions and 4,000 transactions of any other kind per 10 seconds. Every request to the
vault (each attempt, retries included, since the vault counts them) takes a token from the
vault's ``transactions`` bucket; every ``PUT /secrets/{name}`` also takes one from its
``create`` bucket (the client cannot tell a new secret from a new version, so each value
write is paced as a create: conservative for updates). The buckets are shared by every
target pointing at that vault; a 429 answer's ``Retry-After`` pauses both for every caller.
azure-core's retry policy then retries the request itself.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from cloudsync.providers.quotas import AzureQuotas
from cloudsync.ratelimit import DEFAULT_HEADROOM, RateLimiter, buckets

TRANSACTIONS_PER_10_SECONDS = 4_000.0
CREATES_PER_10_SECONDS = 300.0
THROTTLE_PAUSE = 1.0  # when a 429 names no Retry-After
_SET_SECRET = re.compile(r"^/secrets/[^/]+/?$", re.IGNORECASE)  # SetSecret: a new secret or version

_VAULTS: dict[tuple[Any, ...], dict[str, RateLimiter]] = {}
_VAULTS_LOCK = threading.Lock()


def vault_quotas(quotas: AzureQuotas) -> dict[str, float]:
    """The vault's quotas in requests per second, by family."""
    return {"transactions": (quotas.transactions_per_10_seconds or TRANSACTIONS_PER_10_SECONDS) / 10,
            "create": (quotas.creates_per_10_seconds or CREATES_PER_10_SECONDS) / 10}


def vault_buckets(vault_url: str, quotas: AzureQuotas, headroom: float = DEFAULT_HEADROOM) -> dict[str, RateLimiter]:
    """The buckets of one vault (targets on one vault share them)."""
    rates, scale = vault_quotas(quotas), quotas.headroom or headroom
    key = (vault_url.rstrip("/").lower(), scale, *sorted(rates.items()))
    with _VAULTS_LOCK:
        found = _VAULTS.get(key)
        if found is None:
            found = _VAULTS[key] = buckets(rates, headroom=scale)
        return found


def retry_after(response: Any) -> float | None:
    """Retry-After in seconds (Key Vault sends a number), or None."""
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


class VaultPacing(SansIOHTTPPolicy[Any, Any]):
    """A per-attempt pipeline policy: a token per request (two for a value write), a pause on 429."""

    def __init__(self, buckets: dict[str, RateLimiter]) -> None:
        self.buckets = buckets

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        if http.method == "PUT" and _SET_SECRET.match(urlsplit(http.url).path):
            self.buckets["create"].acquire()
        self.buckets["transactions"].acquire()

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        if response.http_response.status_code == 429:
            delay = retry_after(response.http_response)
            for bucket in self.buckets.values():
                bucket.pause(delay if delay is not None else THROTTLE_PAUSE)

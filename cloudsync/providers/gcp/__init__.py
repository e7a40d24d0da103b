"""GCP Secret Manager provider (``provider: gcp``); the SDK is imported only when used.

:mod:`.rules` (what the core knows about this cloud) imports no SDK, so the adapter class
is loaded only on first use: importing the rules never imports the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudsync.providers.gcp.provider import GcpProvider

__all__ = ["GcpProvider"]


def __getattr__(name: str) -> Any:
    if name == "GcpProvider":
        from cloudsync.providers.gcp.provider import GcpProvider

        return GcpProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

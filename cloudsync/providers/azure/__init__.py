"""Azure Key Vault provider (``provider: azure``); see docs/providers/azure.md.

:mod:`.rules` (what the core knows about this cloud) imports no SDK, so the adapter class
is loaded only on first use: importing the rules never imports the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudsync.providers.azure.provider import AzureProvider

__all__ = ["AzureProvider"]


def __getattr__(name: str) -> Any:
    if name == "AzureProvider":
        from cloudsync.providers.azure.provider import AzureProvider

        return AzureProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

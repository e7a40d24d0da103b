"""Azure Key Vault provider (``provider: azure``); see docs/providers/azure.md."""

from cloudsync.providers.azure.provider import AzureProvider

__all__ = ["AzureProvider"]

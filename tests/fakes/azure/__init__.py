"""A faithful fake of Azure Key Vault (secrets), ARM role assignments and managed identity, over HTTPS."""

from tests.fakes.azure.server import (
    ARM_API_VERSION,
    KEYVAULT_API_VERSION,
    SECRETS_USER_ROLE,
    AzureFake,
)
from tests.fakes.azure.vault import ApiError, Vault
from tests.fakes.tls import TlsFiles, make_tls

__all__ = ["ARM_API_VERSION", "KEYVAULT_API_VERSION", "SECRETS_USER_ROLE", "ApiError", "AzureFake", "TlsFiles",
           "Vault", "make_tls"]

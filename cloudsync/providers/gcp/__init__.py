"""GCP Secret Manager provider (``provider: gcp``); the SDK is imported only when used."""

from cloudsync.providers.gcp.provider import GcpProvider

__all__ = ["GcpProvider"]

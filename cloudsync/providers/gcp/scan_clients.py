"""The Resource Manager, IAM and Cloud Asset Inventory clients, opened on first use.

A plan that never scans access opens none of them and imports neither library. Each is
reached at the target's endpoint for its service (:func:`.client.endpoint_for`), so a target
pointed at an emulator sends every call there, and a private endpoint gets TLS.
"""

from __future__ import annotations

import importlib
from typing import Any

from cloudsync.providers.base import ProviderError
from cloudsync.providers.gcp.client import Endpoint, Service, endpoint_for, open_grpc
from cloudsync.providers.gcp.rules import GcpTarget

# kind -> (service, module, client class, transport module, transport class, distribution)
_KINDS: dict[str, tuple[Service, str, str, str, str, str]] = {
    "projects": (Service.RESOURCEMANAGER, "google.cloud.resourcemanager_v3", "ProjectsClient",
                 "google.cloud.resourcemanager_v3.services.projects.transports", "ProjectsGrpcTransport",
                 "google-cloud-resource-manager"),
    "folders": (Service.RESOURCEMANAGER, "google.cloud.resourcemanager_v3", "FoldersClient",
                "google.cloud.resourcemanager_v3.services.folders.transports", "FoldersGrpcTransport",
                "google-cloud-resource-manager"),
    "organizations": (Service.RESOURCEMANAGER, "google.cloud.resourcemanager_v3", "OrganizationsClient",
                      "google.cloud.resourcemanager_v3.services.organizations.transports",
                      "OrganizationsGrpcTransport", "google-cloud-resource-manager"),
    "iam": (Service.IAM, "google.cloud.iam_admin_v1", "IAMClient", "google.cloud.iam_admin_v1.services.iam.transports",
            "IAMGrpcTransport", "google-cloud-iam"),
    "assets": (Service.CLOUDASSET, "google.cloud.asset_v1", "AssetServiceClient",
               "google.cloud.asset_v1.services.asset_service.transports", "AssetServiceGrpcTransport",
               "google-cloud-asset"),
}


class ScanClients:
    """Opens each client once, when the scan first needs it; ``close`` closes those opened."""

    def __init__(self, config: GcpTarget) -> None:
        # Parsed now, so a bad or plain-text non-loopback endpoint fails when the target opens,
        # like the Secret Manager endpoint does, not halfway through a scan.
        self._endpoints: dict[Service, Endpoint | None] = {
            service: endpoint_for(config, service) for service in (Service.RESOURCEMANAGER, Service.IAM,
                                                                   Service.CLOUDASSET)}
        self._open: dict[str, Any] = {}

    def types(self, kind: str) -> Any:
        """The library module of ``kind`` (its request and resource types)."""
        _, module, *_, distribution = _KINDS[kind]
        try:
            return importlib.import_module(module)
        except ImportError:
            raise ProviderError(f"{distribution} is not installed", code="MISSING_SDK",
                                hint="install the GCP extra again: pip install 'cloudsync-secrets[gcp]'") from None

    def client(self, kind: str) -> Any:
        if kind not in self._open:
            service, _, client_name, transport_module, transport_name, _ = _KINDS[kind]
            client_class = getattr(self.types(kind), client_name)
            transport_class = getattr(importlib.import_module(transport_module), transport_name)
            self._open[kind] = open_grpc(client_class, transport_class, self._endpoints[service])
        return self._open[kind]

    def close(self) -> None:
        for client in self._open.values():
            client.transport.close()
        self._open.clear()

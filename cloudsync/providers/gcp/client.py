"""Open the clients of one target: endpoint, transport security, credentials.

- No endpoint: the public service (``secretmanager.googleapis.com``, or
  ``secretmanager.<location>.rep.googleapis.com`` for regional secrets;
  ``cloudresourcemanager.googleapis.com``, ``iam.googleapis.com``, ``cloudasset.googleapis.com``) over TLS, with
  Application Default Credentials.
- An endpoint ``host:port`` on a loopback host (an emulator, the test fake): plain gRPC via
  the client's ``*GrpcTransport(channel=grpc.insecure_channel(...))``, no credentials.
- An endpoint on any other host (Private Service Connect, a proxy): TLS with ADC. Asking
  for plain text there (``http://`` or ``grpc://``) is refused: it would send credentials
  and values unencrypted over a network.

A target's ``endpoint`` applies to every service cloudsync calls for it (Secret Manager,
Resource Manager, IAM, Cloud Asset Inventory); ``endpoints.<service>`` overrides it for one service.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import google.auth
import grpc
from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exc
from google.cloud.secretmanager_v1.services.secret_manager_service import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from cloudsync.providers.base import ProviderError
from cloudsync.providers.gcp import rules
from cloudsync.providers.gcp.errors import no_credentials
from cloudsync.providers.gcp.rules import Endpoint as Endpoint
from cloudsync.providers.rules import EndpointRefused

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
CHANNEL_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))


class Service(StrEnum):
    """The Google APIs cloudsync calls; the values are the keys of a target's ``endpoints``."""

    SECRETMANAGER = "secretmanager"
    RESOURCEMANAGER = "resourcemanager"
    IAM = "iam"
    CLOUDASSET = "cloudasset"


def parse_endpoint(endpoint: str) -> Endpoint:
    """``[scheme://]host[:port]``; plain text only for loopback hosts (``validate`` checks the same rule)."""
    try:
        return rules.parse_endpoint(endpoint)
    except EndpointRefused as refused:
        raise ProviderError(refused.message, code="InvalidEndpoint", hint=refused.hint) from None


def endpoint_for(config: Any, service: Service) -> Endpoint | None:
    """Where ``config`` (a GcpTarget) reaches ``service``: its override, else ``endpoint``, else None (public)."""
    overrides = config.endpoints if service is not Service.SECRETMANAGER else None
    override = getattr(overrides, service.value, None) if overrides is not None else None
    text = override or config.endpoint
    return parse_endpoint(text) if text else None


def open_grpc(client_class: Any, transport_class: Any, endpoint: Endpoint | None, public: str | None = None) -> Any:
    """A client of ``client_class``: plain gRPC to a loopback endpoint, else TLS with ADC (``public`` by default)."""
    if endpoint is not None and not endpoint.tls:
        channel = grpc.insecure_channel(endpoint.address, options=list(CHANNEL_OPTIONS))
        return client_class(transport=transport_class(channel=channel))
    api_endpoint = endpoint.address if endpoint is not None else public
    options = ClientOptions(api_endpoint=api_endpoint) if api_endpoint else None
    return client_class(credentials=_default_credentials(), client_options=options)


def open_client(config: Any) -> Any:
    """A ``SecretManagerServiceClient`` for ``config`` (a GcpTarget); ProviderError on any problem."""
    if not getattr(config, "project", None):
        raise ProviderError("no GCP project is set", hint="add project: <project-id> to the target")
    if config.location and config.replication:
        raise ProviderError("replication applies to global secrets only",
                            hint="regional secrets (location set) live in their location; remove replication")
    regional = f"secretmanager.{config.location}.rep.googleapis.com" if config.location else None
    return open_grpc(SecretManagerServiceClient, SecretManagerServiceGrpcTransport,
                     endpoint_for(config, Service.SECRETMANAGER), regional)


def _default_credentials() -> Any:
    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except auth_exc.DefaultCredentialsError:
        raise no_credentials() from None
    return credentials

"""Token endpoints: App Service managed identity and a minimal Entra authority.

``DefaultAzureCredential`` takes the managed-identity path when ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` are set: ``GET <endpoint>?api-version=2019-08-01&resource=<audience>`` with
the header ``X-IDENTITY-HEADER`` (msal's ``_obtain_token_on_app_service``). A service principal
with an overridden authority fetches ``<authority>/<tenant>/v2.0/.well-known/openid-configuration``
and posts a client-credentials grant to its token endpoint. Tokens are opaque and remember
their audience, which the vault and ARM routes check.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from tests.fakes.azure.server import AzureFake, Response


def managed_identity(fake: AzureFake, method: str, query: dict[str, str], headers: dict[str, str]) -> Response:
    from tests.fakes.azure.server import Response

    fake.count("mi.token")
    if method != "GET" or headers.get("x-identity-header") != fake.identity_header:
        return Response(400, {"statusCode": 400, "message": "The X-IDENTITY-HEADER header is missing or wrong."})
    resource = query.get("resource", "")
    if not resource:
        return Response(400, {"statusCode": 400, "message": "resource is required"})
    token, expires_on = fake.issue_token(resource)
    return Response(200, {"access_token": token, "expires_on": str(expires_on), "resource": resource,
                          "token_type": "Bearer", "client_id": fake.client_id})


def authority(fake: AzureFake, method: str, path: str, raw: bytes) -> Response:
    from tests.fakes.azure.server import Response

    tenant = path.strip("/").split("/", 1)[0]
    if path.endswith("openid-configuration"):
        fake.count("aad.discovery")
        base = f"{fake.url}/{tenant}"
        return Response(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                              "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                              "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                              "issuer": f"{base}/v2.0", "tenant_region_scope": None})
    fake.count("aad.token")
    form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()}
    if method != "POST" or form.get("client_id") != fake.client_id or form.get("client_secret") != fake.client_secret:
        return Response(401, {"error": "invalid_client",
                              "error_description": "AADSTS7000215: Invalid client secret provided."})
    scope = form.get("scope", "").split()[0] if form.get("scope") else ""
    token, expires_on = fake.issue_token(scope.removesuffix("/.default"))
    return Response(200, {"token_type": "Bearer", "expires_in": expires_on - int(time.time()), "access_token": token})

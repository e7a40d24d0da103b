"""ARM routes of the vault resource (``Microsoft.KeyVault/vaults``, api-version 2026-05-15).

Paths as ``azure-mgmt-keyvault`` sends them: ``GET`` (``vaults.get``) and ``PATCH``
(``vaults.update``) of ``/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.KeyVault/
vaults/{name}``, and ``PUT .../vaults/{name}/accessPolicies/{add|replace|remove}``
(``vaults.update_access_policy``). A vault other than the fake's own answers 404
``ResourceNotFound``, after the permission check, as ARM does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.azure.vault_resource import SEGMENT

if TYPE_CHECKING:
    from tests.fakes.azure.server import AzureFake, Response

API_VERSION = "2026-05-15"
_ACTION = "Microsoft.KeyVault/vaults/"


def route(method: str, path: str) -> tuple[str, str] | None:
    """(operation, RBAC action) of a vault-resource request, or None."""
    lower = path.lower()
    tail = lower[lower.index(SEGMENT) + len(SEGMENT):].strip("/").split("/")
    if len(tail) == 1 and tail[0]:
        return {"GET": ("arm.vaults.get", _ACTION + "read"), "PATCH": ("arm.vaults.update", _ACTION + "write")}.get(method)
    if len(tail) == 3 and tail[1] == "accesspolicies" and method == "PUT":
        return "arm.vaults.update_access_policy", _ACTION + "accessPolicies/write"
    return None


def dispatch(fake: AzureFake, operation: str, path: str, query: dict[str, str], body: Any) -> Response:
    from tests.fakes.azure.server import Response

    resource = fake.vault_resource
    resource.check(path)
    payload = body if isinstance(body, dict) else {}
    if operation == "arm.vaults.update":
        return Response(200, resource.update(payload))
    if operation == "arm.vaults.update_access_policy":
        return Response(200, resource.update_policies(path.rstrip("/").rsplit("/", 1)[-1], payload))
    return Response(200, resource.body())

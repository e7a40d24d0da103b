"""ARM role-definition routes (``Microsoft.Authorization``, api-version 2022-04-01).

Paths as ``azure-mgmt-authorization`` sends them: ``{scope}/providers/Microsoft.Authorization/
roleDefinitions/{id}`` with ``GET`` (``get`` and ``get_by_id`` alike) and ``PUT``
(``create_or_update``), and ``{scope}/providers/Microsoft.Authorization/roleDefinitions``
(``list``, with ``$filter``; one page: a tenant has at most a few thousand roles).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.azure.roles import SEGMENT

if TYPE_CHECKING:
    from tests.fakes.azure.server import AzureFake, Response

API_VERSION = "2022-04-01"
_ACTION = "Microsoft.Authorization/roleDefinitions/"


def route(method: str, path: str) -> tuple[str, str] | None:
    """(operation, RBAC action) of an ARM role-definition request, or None."""
    lower = path.lower()
    tail = lower[lower.index(SEGMENT) + len(SEGMENT):].strip("/")
    if not tail:
        return ("arm.role_definitions.list", _ACTION + "read") if method == "GET" else None
    if "/" in tail:
        return None
    return {"GET": ("arm.role_definitions.get", _ACTION + "read"),
            "PUT": ("arm.role_definitions.create", _ACTION + "write")}.get(method)


def dispatch(fake: AzureFake, operation: str, path: str, query: dict[str, str], body: Any) -> Response:
    from tests.fakes.azure.server import Response

    cut = path.lower().index(SEGMENT)
    scope, guid = path[:cut] or "/", path[cut + len(SEGMENT):].strip("/")
    if operation == "arm.role_definitions.list":
        return Response(200, {"value": fake.roles.list(scope, query.get("$filter"))})
    if operation == "arm.role_definitions.create":
        return Response(201, fake.roles.create(scope, guid, body if isinstance(body, dict) else {}))
    return Response(200, fake.roles.get(scope, guid))

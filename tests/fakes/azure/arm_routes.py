"""ARM role-assignment routes (``Microsoft.Authorization``, api-version 2022-04-01).

Paths as ``azure-mgmt-authorization`` sends them: ``{scope}/providers/Microsoft.Authorization/
roleAssignments[/{name}]`` with ``GET`` (list, with ``$filter``; or one), ``PUT`` (create) and
``DELETE``. Lists page by ``arm_page_size`` with an absolute ``nextLink`` carrying ``$skipToken``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.fakes.azure.rbac import PROVIDER_SEGMENT, normalize_scope

if TYPE_CHECKING:
    from tests.fakes.azure.server import AzureFake, Response

API_VERSION = "2022-04-01"


def route(method: str, path: str) -> tuple[str, str] | None:
    """(operation, RBAC action) of an ARM role-assignment request, or None."""
    lower = path.lower()
    tail = lower[lower.index(PROVIDER_SEGMENT) + len(PROVIDER_SEGMENT):].strip("/")
    base = "Microsoft.Authorization/roleAssignments/"
    if not tail:
        return ("arm.role_assignments.list", base + "read") if method == "GET" else None
    if "/" in tail:
        return None
    return {"GET": ("arm.role_assignments.get", base + "read"),
            "PUT": ("arm.role_assignments.create", base + "write"),
            "DELETE": ("arm.role_assignments.delete", base + "delete")}.get(method)


def dispatch(fake: AzureFake, operation: str, path: str, query: dict[str, str], body: Any) -> Response:
    from tests.fakes.azure.server import Response

    cut = path.lower().index(PROVIDER_SEGMENT)
    scope, rest = path[:cut], path[cut + len(PROVIDER_SEGMENT):].strip("/")
    if operation == "arm.role_assignments.list":
        items = fake.rbac.list(scope, query.get("$filter"))
        start = int(query.get("$skipToken") or 0)
        following = start + fake.arm_page_size
        next_link = None
        if following < len(items):
            params = {"api-version": API_VERSION, "$skipToken": str(following)}
            if query.get("$filter"):
                params["$filter"] = query["$filter"]
            next_link = (f"{fake.url}{normalize_scope(scope)}/providers/Microsoft.Authorization/roleAssignments?"
                         + urlencode(params))
        return Response(200, {"value": items[start:following], "nextLink": next_link})
    if operation == "arm.role_assignments.create":
        status, created = fake.rbac.create(scope, rest, body or {})
        return Response(status, created)
    if operation == "arm.role_assignments.delete":
        deleted = fake.rbac.delete(scope, rest)
        return Response(200, deleted) if deleted else Response(204)
    return Response(200, fake.rbac.get(scope, rest))

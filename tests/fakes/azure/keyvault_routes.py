"""Key Vault secrets REST routes: which operation a request is, and its answer.

Paths and bodies as ``azure-keyvault-secrets`` sends them (see its ``_generated`` operations):
``PUT /secrets/{name}``, ``GET|PATCH /secrets/{name}/{version}`` (empty version = latest),
``GET /secrets``, ``GET /secrets/{name}/versions``, ``DELETE /secrets/{name}``,
``GET /deletedsecrets[/{name}]``, ``DELETE /deletedsecrets/{name}`` (purge),
``POST /deletedsecrets/{name}/recover``. Lists return at most ``maxresults`` (1-25, default
25) items and an absolute ``nextLink`` carrying a ``$skiptoken``. Like the real vault, a page
may hold fewer items than asked for (``AzureFake.list_page_size``) or none at all while a
``nextLink`` still follows (``AzureFake.empty_pages``): only the absence of a ``nextLink``
ends a listing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.fakes.azure.vault import ApiError

if TYPE_CHECKING:
    from tests.fakes.azure.server import AzureFake, Response

_DATA = "Microsoft.KeyVault/vaults/secrets/"


def route(method: str, path: str) -> tuple[str, str] | None:
    """(operation, RBAC data action) of a data-plane request, or None when there is no such route."""
    # Keep an empty trailing segment: ``/secrets/name/`` means "the latest version".
    parts = path.split("/")[1:]
    raw = path.rstrip("/").split("/")[1:]
    if parts[0].lower() == "secrets":
        if len(raw) == 1:
            return ("kv.list", _DATA + "readMetadata/action") if method == "GET" else None
        if len(raw) == 3 and raw[2] == "versions" and method == "GET":
            return "kv.list_versions", _DATA + "readMetadata/action"
        if len(parts) == 2:
            return {"PUT": ("kv.set", _DATA + "setSecret/action"),
                    "DELETE": ("kv.delete", _DATA + "delete"),
                    "GET": ("kv.get", _DATA + "getSecret/action")}.get(method)
        if len(parts) == 3:
            return {"GET": ("kv.get", _DATA + "getSecret/action"),
                    "PATCH": ("kv.update", _DATA + "update/action")}.get(method)
        return None
    if parts[0].lower() == "deletedsecrets":
        if len(raw) == 1:
            return ("kv.list_deleted", _DATA + "readMetadata/action") if method == "GET" else None
        if len(raw) == 2:
            return {"GET": ("kv.get_deleted", _DATA + "readMetadata/action"),
                    "DELETE": ("kv.purge", _DATA + "purge/action")}.get(method)
        if len(raw) == 3 and raw[2] == "recover" and method == "POST":
            return "kv.recover", _DATA + "recover/action"
    return None


Lister = Callable[[int, int], tuple[list[dict[str, Any]], int]]


def _page(fake: AzureFake, lister: Lister, path: str, query: dict[str, str]) -> dict[str, Any]:
    """One page: ``lister(start, size)`` gives the page's items and the total (built per page, so
    listing N secrets costs O(N), as the service's does)."""
    try:
        size = int(query.get("maxresults") or 25)
    except ValueError:
        size = 0
    if not 1 <= size <= 25:
        raise ApiError(400, "BadParameter", "maxresults must be between 1 and 25.")
    size = min(size, max(1, fake.list_page_size))
    start, empties = _skip(query.get("$skiptoken"))

    def link(position: int, served_empty: int) -> str:
        skip = base64.urlsafe_b64encode(f"{position}:{served_empty}".encode()).decode()
        params = {"api-version": query.get("api-version", ""), "$skiptoken": skip, "maxresults": str(size)}
        return f"{fake.url}{path}?{urlencode(params)}"

    if empties < fake.empty_pages:  # an empty page before each page of items
        return {"value": [], "nextLink": link(start, empties + 1)}
    items, total = lister(start, size)
    following = start + size
    return {"value": items, "nextLink": link(following, 0) if following < total else None}


def _skip(token: str | None) -> tuple[int, int]:
    """(position, empty pages served there) of a ``$skiptoken``."""
    if not token:
        return 0, 0
    try:
        position, _, empties = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(position), int(empties or 0)
    except ValueError:
        raise ApiError(400, "BadParameter", "The $skiptoken is not valid.") from None


def dispatch(fake: AzureFake, operation: str, path: str, query: dict[str, str], body: Any) -> Response:
    from tests.fakes.azure.server import Response

    vault = fake.vault
    parts = path.split("/")[1:]
    name = parts[1] if len(parts) > 1 else ""
    if operation == "kv.list":
        return Response(200, _page(fake, vault.list_secrets, "/secrets", query))
    if operation == "kv.list_versions":
        return Response(200, _page(fake, lambda start, size: vault.list_versions(name, start, size),
                                   f"/secrets/{name}/versions", query))
    if operation == "kv.list_deleted":
        return Response(200, _page(fake, vault.list_deleted, "/deletedsecrets", query))
    if operation == "kv.set":
        if not isinstance(body, dict):
            raise ApiError(400, "BadParameter", "The request body is required.")
        return Response(200, vault.set_secret(name, body))
    if operation == "kv.get":
        return Response(200, vault.get_secret(name, parts[2] if len(parts) > 2 else ""))
    if operation == "kv.update":
        return Response(200, vault.update_secret(name, parts[2], body if isinstance(body, dict) else {}))
    if operation == "kv.delete":
        return Response(200, vault.delete_secret(name))
    if operation == "kv.get_deleted":
        return Response(200, vault.get_deleted(name))
    if operation == "kv.purge":
        vault.purge(name)
        return Response(204)
    if operation == "kv.recover":
        return Response(200, vault.recover(name))
    raise ApiError(400, "BadParameter", f"unsupported operation {operation}")

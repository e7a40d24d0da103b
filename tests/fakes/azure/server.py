"""The fake's HTTPS server: Key Vault secrets REST, ARM role assignments, token endpoints.

One ``ThreadingHTTPServer`` on 127.0.0.1, HTTP/1.1 keep-alive over TLS, routes by path:

============================================  =============================================
``/secrets…``, ``/deletedsecrets…``           Key Vault data plane (api-version 2026-04-01)
``…/providers/Microsoft.Authorization/…``     ARM role assignments and role definitions (2022-04-01)
``…/providers/Microsoft.KeyVault/vaults/…``    the vault as an ARM resource (api-version 2026-05-15)
``/msi/token``                                App Service managed identity (IDENTITY_ENDPOINT)
``/<tenant>/v2.0/.well-known/…``, ``/oauth2``  a minimal Entra authority (client credentials)
============================================  =============================================

Data-plane and ARM requests need a bearer token for their audience; a request without one
gets the 401 challenge the real vault sends. Faults (429 with Retry-After, 503, dropped
connections) can be injected for the next N API calls, a call can be performed and its
answer dropped (``lose``), RBAC actions can be refused one by one (``deny``) or all but a
few (``allow_only``), and every call is counted by operation in :attr:`AzureFake.calls`.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.azure import arm_routes, identity, keyvault_routes, role_routes, vault_routes
from tests.fakes.azure.rbac import PROVIDER_SEGMENT, RoleAssignments, normalize_scope
from tests.fakes.azure.roles import SEGMENT as ROLE_SEGMENT
from tests.fakes.azure.roles import RoleDefinitions
from tests.fakes.azure.vault import ApiError, Vault
from tests.fakes.azure.vault_resource import SEGMENT as VAULT_SEGMENT
from tests.fakes.azure.vault_resource import VaultResource
from tests.fakes.quota import QuotaBuckets
from tests.fakes.tls import TlsFiles, TlsHttpServer

KEYVAULT_API_VERSION = "2026-04-01"
ARM_API_VERSION = arm_routes.API_VERSION
VAULT_AUDIENCE = "https://vault.azure.net"
ARM_AUDIENCE = "https://management.azure.com"
SECRETS_USER_ROLE = "4633458b-17de-408a-b874-0445c86b69e6"


@dataclass
class Fault:
    status: int  # 0 = drop the connection without an answer
    remaining: int
    retry_after: str | None
    operations: frozenset[str] | None  # None: any API call
    after: bool = False  # perform the call, then drop the connection (a lost answer)


@dataclass(frozen=True)
class Token:
    audience: str
    object_id: str
    expires_on: int


class Response:
    """What a route answers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class AzureFake:
    """The running fake: one vault, the role assignments around it, the identity endpoints."""

    def __init__(self, tls: TlsFiles, *, tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
                 subscription_id: str = "00000000-1111-2222-3333-444444444444",
                 resource_group: str = "rg-cloudsync", vault_name: str = "fakevault",
                 identity_object_id: str = "99999999-0000-4000-8000-000000000001") -> None:
        self.tls = tls
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.vault_name = vault_name
        self.identity_object_id = identity_object_id
        self.identity_header = secrets.token_hex(8)
        self.client_id = "11111111-2222-4333-8444-555555555555"
        self.client_secret = secrets.token_hex(12)
        self.arm_page_size = 100
        self.list_page_size = 25  # the most items a Key Vault list page holds (maxresults caps it too)
        self.empty_pages = 0  # empty pages (with a nextLink) served before each page of items
        # On the RBAC model, Key Vault names the authorising assignment in each answer; False plays
        # a vault whose answers do not (so cloudsync must read the vault to learn its model).
        self.rbac_header = True
        self.calls: Counter[str] = Counter()
        # Key Vault's published quotas per vault, enforced when set (see enforce_quota).
        self.quota: QuotaBuckets | None = None
        self.hosts: Counter[str] = Counter()  # Host header per API family, to check endpoint routing
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._denied: set[str] = set()
        self._allowed: set[str] | None = None  # None: every action the token's identity asks for
        self._tokens: dict[str, Token] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.vault = Vault("")
        self.rbac = RoleAssignments()
        # The tenant root group (named after the tenant, as in Azure) holds the subscription's group.
        self.management_groups = (tenant_id, "mg-workloads")
        self.rbac.ancestors = tuple(self.management_group_scope(g) for g in self.management_groups)
        self.roles = RoleDefinitions()
        self.vault_resource = VaultResource(subscription_id, resource_group, vault_name, tenant_id)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> AzureFake:
        server = _Server(("127.0.0.1", 0), _Handler, self.tls.server_context(), self)
        self._server = server
        self.url = f"https://127.0.0.1:{server.server_address[1]}"
        self.vault = Vault(self.url)
        self.vault_resource.reset(self.url)
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="azure-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget every secret, assignment, fault, denial and count (between tests)."""
        self.vault.reset()
        self.rbac_header = True
        self.vault.pending_polls, self.vault.pending_seconds, self.vault.purge_protection = 1, 2.0, False
        self.rbac.reset()
        self.roles.reset()
        self.vault_resource.reset(self.url)
        self.arm_page_size = 100
        self.list_page_size = 25
        self.empty_pages = 0
        with self._lock:
            self.calls.clear()
            self.hosts.clear()
            self._faults.clear()
            self.quota = None
            self._denied.clear()
            self._allowed = None

    # -- what tests use -------------------------------------------------------------------

    @property
    def vault_scope(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
                f"/providers/Microsoft.KeyVault/vaults/{self.vault_name}")

    def secret_scope(self, name: str) -> str:
        return f"{self.vault_scope}/secrets/{name}"

    @property
    def resource_group_scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    @property
    def subscription_scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}"

    @staticmethod
    def management_group_scope(name: str) -> str:
        return f"/providers/Microsoft.Management/managementGroups/{name}"

    @property
    def role_definition_id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{SECRETS_USER_ROLE}")

    @property
    def arm_audiences(self) -> tuple[str, ...]:
        """Tokens ARM accepts: the public cloud's, or this fake's own URL under either loopback name
        (a target's ``arm_endpoint`` doubles as the token audience)."""
        return ARM_AUDIENCE, self.url, self.url.replace("127.0.0.1", "localhost")

    def client_env(self) -> dict[str, str]:
        """Environment for the real clients: managed identity via this fake, TLS trust of its CA."""
        return {"IDENTITY_ENDPOINT": f"{self.url}/msi/token", "IDENTITY_HEADER": self.identity_header,
                "REQUESTS_CA_BUNDLE": str(self.tls.ca_pem), "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential"}

    def inject(self, status: int, count: int = 1, *, retry_after: str | None = None,
               operations: Iterable[str] | None = None) -> None:
        """Answer the next ``count`` API calls (of ``operations``, when given) with ``status``.

        ``status`` 0 drops the connection without an answer (a connection error)."""
        with self._lock:
            self._faults.append(Fault(status, count, retry_after, frozenset(operations) if operations else None))

    def lose(self, operation: str, count: int = 1) -> None:
        """Perform the next ``count`` calls of ``operation``, then drop the connection unanswered."""
        with self._lock:
            self._faults.append(Fault(0, count, None, frozenset({operation}), after=True))

    def deny(self, *actions: str) -> None:
        """Refuse (403) every call needing one of these RBAC (data) actions."""
        with self._lock:
            self._denied.update(a.lower() for a in actions)

    def allow_only(self, *actions: str) -> None:
        """Let the identity hold exactly these RBAC actions and data actions: refuse (403) every other."""
        with self._lock:
            self._allowed = {a.lower() for a in actions}

    def enforce_quota(self, transactions_per_10_seconds: float = 4_000, creates_per_10_seconds: float = 300) -> QuotaBuckets:
        """Throttle data-plane requests beyond the vault's quotas with Key Vault's 429 and Retry-After.

        Every secrets request takes a ``transactions`` token; every SetSecret also a ``create``
        one (the fake, like cloudsync, does not tell a new secret from a new version).
        """
        self.quota = QuotaBuckets({"transactions": transactions_per_10_seconds / 10,
                                   "create": creates_per_10_seconds / 10})
        return self.quota

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def api_calls(self, prefix: str = "") -> int:
        with self._lock:
            return sum(n for op, n in self.calls.items() if op.startswith(prefix))

    # -- request handling -------------------------------------------------------------

    def count(self, operation: str, host: str | None = None) -> None:
        with self._lock:
            self.calls[operation] += 1
            if host is not None:
                self.hosts[f"{operation.split('.', 1)[0]} {host}"] += 1

    def take_fault(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.operations is None or operation in fault.operations):
                    fault.remaining -= 1
                    return fault
        return None

    def denied(self, action: str) -> bool:
        with self._lock:
            return action.lower() in self._denied or (self._allowed is not None and action.lower() not in self._allowed)

    def issue_token(self, audience: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        expires_on = int(time.time()) + 3600
        with self._lock:
            self._tokens[token] = Token(audience.rstrip("/"), self.identity_object_id, expires_on)
        return token, expires_on

    def token_for(self, authorization: str | None) -> Token | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        with self._lock:
            token = self._tokens.get(authorization[len("Bearer "):].strip())
        if token is None or token.expires_on < time.time():
            return None
        return token

    def challenge(self) -> Response:
        header = (f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                  f'resource="{VAULT_AUDIENCE}"')
        return Response(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer "
                                        "or PoP token."}}, {"WWW-Authenticate": header})

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Response | None:
        """Route one request; None means: drop the connection."""
        parts = urlsplit(target)
        path = parts.path  # not normalised: "/secrets/name/" (latest version) differs from "/secrets/name"
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw) if raw.strip() and headers.get("content-type", "").startswith("application/json") \
                else None
        except ValueError:
            return Response(400, {"error": {"code": "BadParameter", "message": "The request body is not JSON."}})
        try:
            if path == "/msi/token":
                return identity.managed_identity(self, method, query, headers)
            if path.endswith("/v2.0/.well-known/openid-configuration") or path.endswith("/oauth2/v2.0/token"):
                return identity.authority(self, method, path, raw)
            if path.lower().startswith(("/secrets", "/deletedsecrets")):
                return self._api("kv", method, path, query, headers, body)
            if PROVIDER_SEGMENT in path.lower():
                return self._api("arm", method, normalize_scope(path), query, headers, body)
            if ROLE_SEGMENT in path.lower():
                return self._api("arm-roles", method, normalize_scope(path), query, headers, body)
            if VAULT_SEGMENT in path.lower():
                return self._api("arm-vault", method, normalize_scope(path), query, headers, body)
            return Response(404, {"error": {"code": "NotFound", "message": f"no route for {method} {path}"}})
        except ApiError as exc:
            return Response(exc.status, exc.body(), exc.headers)

    def _api(self, family: str, method: str, path: str, query: dict[str, str], headers: dict[str, str],
             body: Any) -> Response | None:
        routes = {"kv": keyvault_routes, "arm": arm_routes, "arm-roles": role_routes, "arm-vault": vault_routes}[family]
        route = routes.route(method, path)
        if route is None:
            return Response(405 if family == "kv" else 404,
                            {"error": {"code": "BadRequest", "message": f"{method} {path} is not supported"}})
        operation, action = route
        # cloudsync's apply lock is counted (and faulted) apart, so tests about secret writes
        # keep exact counts; lock.kv.set etc. are asserted by the lock's own tests.
        counted = f"lock.{operation}" if family == "kv" and path.lower().startswith("/secrets/cloudsync-lock-") \
            else operation
        token = self.token_for(headers.get("authorization"))
        if family == "kv" and (token is None or token.audience != VAULT_AUDIENCE):
            self.count("kv.challenge")
            return self.challenge()
        if family != "kv" and (token is None or token.audience not in self.arm_audiences):
            self.count("arm.unauthorized")
            return Response(401, {"error": {"code": "InvalidAuthenticationToken",
                                            "message": "The access token is missing or invalid."}})
        self.count(counted, headers.get("host"))
        if family == "kv" and self.quota is not None:
            wait = self.quota.admit(["transactions", *(["create"] if operation == "kv.set" else [])])
            if wait is not None:
                self.count("fault.quota")
                return _fault_response(family, Fault(429, 0, QuotaBuckets.retry_after_header(wait), None))
        fault = self.take_fault(counted)
        if fault is not None and not fault.after:
            self.count(f"fault.{fault.status or 'drop'}")
            if fault.status == 0:
                return None
            return _fault_response(family, fault)
        expected = KEYVAULT_API_VERSION if family == "kv" else routes.API_VERSION
        if query.get("api-version") != expected:
            raise ApiError(400, "BadParameter", f"The specified version ({query.get('api-version')}) is not "
                           f"recognized. This fake speaks {expected}.")
        if self.denied(action):
            raise _forbidden(family, action, token, path)
        answer = routes.dispatch(self, operation, path, query, body)
        if fault is not None:  # performed; the answer is lost on the way back
            self.count("fault.lost")
            return None
        if family == "kv" and self.rbac_header and self.vault_resource.rbac is True and answer.status < 400:
            # Key Vault names the role assignment that authorised the call (as recorded responses
            # show); a vault on access policies has none to name, so it sends no such header.
            answer.headers.setdefault("x-ms-keyvault-rbac-assignment-id",
                                      str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.vault_scope}:{token.object_id}")))
        return answer


def _fault_response(family: str, fault: Fault) -> Response:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.status == 429:
        code = "Throttled" if family == "kv" else "TooManyRequests"
        message = ("Request was not processed because too many requests were received. "
                   "Reason: VaultRequestTypeLimitReached")
    else:
        code, message = "ServiceUnavailable", "The service is temporarily unavailable."
    return Response(fault.status, {"error": {"code": code, "message": message}}, headers)


def _forbidden(family: str, action: str, token: Token, path: str) -> ApiError:
    if family == "kv":
        return ApiError(403, "Forbidden",
                        f"Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                        f"assignments or role definitions were changed recently, please observe propagation time."
                        f"\r\nCaller: oid={token.object_id}\r\nAction: '{action}'\r\nResource: "
                        f"'{path.lower()}'\r\nAssignment: (not found)", inner="ForbiddenByRbac")
    return ApiError(403, "AuthorizationFailed",
                    f"The client '{token.object_id}' with object id '{token.object_id}' does not have "
                    f"authorization to perform action '{action}' over scope '{path}' or the scope is invalid.")


class _Server(TlsHttpServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext,
                 fake: AzureFake) -> None:
        super().__init__(address, handler, context)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
    disable_nagle_algorithm = True  # or every small response waits ~40 ms for a delayed ACK
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.fake.handle(self.command, self.path, headers, raw)
        if response is None:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        data = b"" if response.body is None else json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if response.status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
        # Key Vault and ARM name every request; it is what a support ticket asks for.
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.end_headers()
        if response.status != 204:
            self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

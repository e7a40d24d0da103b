"""The fake served over real gRPC: ``google.cloud.secretmanager.v1.SecretManagerService``,
and beside it Resource Manager and IAM roles (:mod:`.iam_services`, state in ``directory``)
and Cloud Asset Inventory's index of the secrets (:mod:`.assets`, lagging ``index_lag``
seconds behind the store on the fake's clock, which ``advance`` moves).

The real ``SecretManagerServiceClient`` talks to it over its default gRPC transport on
127.0.0.1 ephemeral ports, in one of two ways, as cloudsync does:

- ``address``: plain gRPC without credentials, as an emulator on a loopback host is reached;
- ``tls_address`` (when started with a :class:`TlsFiles`): TLS with a certificate of the
  test CA, and every call must carry ``authorization: Bearer <token>``: a JWT the test
  service account signed itself, or an access token the fake's OAuth endpoint issued for
  it (:mod:`.oauth`), as the real service demands. A missing, forged, expired or revoked
  token is UNAUTHENTICATED, worded like Google's.

Besides the API it offers what tests and benchmarks need:

- ``calls``: a counter of RPCs by method name (failed ones included, as quotas count them);
- ``inject(code, times, methods=..., retry_delay=...)``: the next ``times`` matching calls
  fail with ``code`` (RESOURCE_EXHAUSTED carries a ``google.rpc.RetryInfo`` when a delay
  is given, as Google APIs do);
- ``lose(method, times)``: the next ``times`` calls are performed, then answered
  UNAVAILABLE, as when a response is lost on the way back;
- ``deny(*methods)``: those methods answer PERMISSION_DENIED naming the IAM permission,
  worded like the real service; ``grant_only(permissions, on_secrets=...)``: every method
  whose permission is not granted (on the project, or on that one secret) is denied;
- ``enforce_quota(...)``: Secret Manager's request quotas as token buckets (:mod:`.quota`);
  a call over one is RESOURCE_EXHAUSTED with a ``RetryInfo`` saying when to come back;
- ``early``: calls of a quota family (read, write, access) that arrived before the end of a
  ``RetryInfo`` delay the fake had just sent for that family: a client that honours it sends none;
- ``max_page_size``: the largest page the service returns, whatever the client asks for
  (the real one caps at 25,000 and may return fewer), so tests read several pages;
- ``reset()``: an empty service, no faults, no grants, zeroed counters, full pages.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud import secretmanager
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import duration_pb2, empty_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from tests.fakes.gcp import assets, iam_services
from tests.fakes.gcp.directory import Directory
from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.oauth import Credentials
from tests.fakes.gcp.quota import ProjectQuota, family
from tests.fakes.gcp.store import MAX_PAGE, State, Store
from tests.fakes.tls import TlsFiles

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"

# The IAM permission each method checks, for PERMISSION_DENIED messages.
PERMISSIONS = {
    "ListSecrets": "secretmanager.secrets.list",
    "CreateSecret": "secretmanager.secrets.create",
    "GetSecret": "secretmanager.secrets.get",
    "UpdateSecret": "secretmanager.secrets.update",
    "DeleteSecret": "secretmanager.secrets.delete",
    "AddSecretVersion": "secretmanager.versions.add",
    "ListSecretVersions": "secretmanager.versions.list",
    "GetSecretVersion": "secretmanager.versions.get",
    "AccessSecretVersion": "secretmanager.versions.access",
    "DisableSecretVersion": "secretmanager.versions.disable",
    "EnableSecretVersion": "secretmanager.versions.enable",
    "DestroySecretVersion": "secretmanager.versions.destroy",
    "GetIamPolicy": "secretmanager.secrets.getIamPolicy",
    "SetIamPolicy": "secretmanager.secrets.setIamPolicy",
    **iam_services.PERMISSIONS,
    **assets.PERMISSIONS,
}


# Host names the TLS certificate answers for, besides 127.0.0.1: the global endpoint, the
# regional endpoints the tests use, and a private endpoint (Private Service Connect style).
TLS_NAMES = ("secretmanager.googleapis.com", "secretmanager.us-east1.rep.googleapis.com",
             "secretmanager.europe-west4.rep.googleapis.com", "secretmanager.private.example")
_UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                    "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/"
                    "devconsole-project.")
_SECRET_OF = re.compile(r"/secrets/([^/]+)")


@dataclass
class _Fault:
    code: grpc.StatusCode
    remaining: int
    methods: frozenset[str] | None
    retry_delay: float | None
    after: bool = False  # perform the call first, then fail (a lost response)
    where: str | None = None  # only calls whose resource name contains this


@dataclass(frozen=True)
class _Grants:
    """The permissions the caller holds: on the project, and on single secrets."""

    project: frozenset[str]
    secrets: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allows(self, permission: str, resource: str) -> bool:
        if permission in self.project:
            return True
        found = _SECRET_OF.search(resource)
        return found is not None and permission in self.secrets.get(found[1], frozenset())


def _pb(cls: Any) -> Any:
    return cls.pb()


def _resource_of(request: Any) -> str:
    if getattr(request, "secret_id", ""):  # CreateSecret: the secret it would make
        return f"{request.parent}/secrets/{request.secret_id}"
    for attr in ("name", "parent", "resource"):
        if hasattr(request, attr) and getattr(request, attr):
            return str(getattr(request, attr))
    if hasattr(request, "secret"):
        return str(request.secret.name)
    return ""


class FakeSecretManager:
    """An in-process Secret Manager on ``127.0.0.1:<port>``."""

    def __init__(self, tls: TlsFiles | None = None) -> None:
        self.offset = 0.0  # seconds the fake's clock runs ahead of the wall clock (``advance``)
        self.store = Store(self.now)
        self.directory = Directory()
        self.calls: Counter[str] = Counter()
        self.max_page_size = MAX_PAGE
        self.tls = tls
        self.credentials: Credentials | None = None  # the service account the TLS port accepts
        self.quota: ProjectQuota | None = None  # enforced when set (enforce_quota)
        self.early: Counter[str] = Counter()  # calls of a family sent before its RetryInfo delay ended
        self._retry_until: dict[str, float] = {}  # family -> when the last RetryInfo delay ends (monotonic)
        self._faults: list[_Fault] = []
        self._denied: set[str] = set()
        self._grants: _Grants | None = None
        self._lock = threading.Lock()
        self._servers: list[grpc.Server] = []
        self.port = 0
        self.tls_port = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeSecretManager:
        plain = self._server(authenticated=False)
        self.port = plain.add_insecure_port("127.0.0.1:0")
        plain.start()
        self._servers.append(plain)
        if self.tls is not None:
            secure = self._server(authenticated=True)
            credentials = grpc.ssl_server_credentials(
                [(self.tls.key_pem.read_bytes(), self.tls.cert_pem.read_bytes())])
            self.tls_port = secure.add_secure_port("127.0.0.1:0", credentials)
            secure.start()
            self._servers.append(secure)
            self.credentials = Credentials(self.tls)
        return self

    def _server(self, *, authenticated: bool) -> grpc.Server:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fake-gcp"),
                             options=[("grpc.max_send_message_length", -1),
                                      ("grpc.max_receive_message_length", -1),
                                      ("grpc.so_reuseport", 0)])
        handlers = grpc.method_handlers_generic_handler(SERVICE, self._handlers(authenticated=authenticated))
        def wrap(method: str, body: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
            return self._wrap(method, body, authenticated=authenticated)

        server.add_generic_rpc_handlers((handlers, *iam_services.handlers(self, wrap), *assets.handlers(self, wrap)))
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.stop(grace=None).wait()
        self._servers.clear()
        if self.credentials is not None:
            self.credentials.stop()
            self.credentials = None

    @property
    def address(self) -> str:
        """Plain gRPC, no credentials (what a loopback ``endpoint`` gets)."""
        return f"127.0.0.1:{self.port}"

    @property
    def tls_address(self) -> str:
        """TLS with bearer tokens (what ``endpoint: https://…`` and the public endpoints get)."""
        return f"127.0.0.1:{self.tls_port}"

    def reset(self) -> None:
        with self._lock:
            self.offset = 0.0
            self.store = Store(self.now)
            self.directory = Directory()
            self.calls.clear()
            self.max_page_size = MAX_PAGE
            self._faults.clear()
            self._denied.clear()
            self._grants = None
            self.quota = None
            self.early.clear()
            self._retry_until.clear()
        if self.credentials is not None:
            self.credentials.reset()

    # -- switches ---------------------------------------------------------------------

    def inject(self, code: grpc.StatusCode, times: int = 1, *, methods: Iterable[str] | None = None,
               retry_delay: float | None = None) -> None:
        """Fail the next ``times`` calls (of ``methods``, or any) with ``code``."""
        with self._lock:
            self._faults.append(_Fault(code, times, frozenset(methods) if methods else None, retry_delay))

    def enforce_quota(self, **limits: float) -> ProjectQuota:
        """Refuse calls over Secret Manager's quotas from now on (``limits``: :class:`ProjectQuota`'s
        per-minute and per-second rates; the published ones by default) until reset."""
        with self._lock:
            self.quota = ProjectQuota(**limits)
            return self.quota

    def lose(self, method: str, times: int = 1, *, where: str | None = None) -> None:
        """Perform the next ``times`` calls of ``method`` (on resources containing ``where``), then
        answer UNAVAILABLE: the response is lost."""
        with self._lock:
            self._faults.append(_Fault(grpc.StatusCode.UNAVAILABLE, times, frozenset({method}), None, after=True,
                                       where=where))

    def deny(self, *methods: str) -> None:
        """Answer PERMISSION_DENIED to ``methods`` until reset."""
        with self._lock:
            self._denied.update(methods)

    def grant_only(self, permissions: Iterable[str], *, on_secrets: Mapping[str, Iterable[str]] | None = None) -> None:
        """Let the caller hold exactly ``permissions`` on the project (plus ``on_secrets``: secret id ->
        permissions bound on that secret alone); every other call is PERMISSION_DENIED until reset."""
        with self._lock:
            self._grants = _Grants(frozenset(permissions),
                                   {k: frozenset(v) for k, v in (on_secrets or {}).items()})


    # -- time and the asset index ------------------------------------------------------

    def now(self) -> float:
        """The fake's clock: the wall clock plus what tests ``advance``d it by."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (the asset index catches up, secrets expire), without sleeping."""
        self.offset += seconds

    def index_lag(self, seconds: float) -> None:
        """How many seconds Cloud Asset Inventory's answers trail the store (0 after ``reset``)."""
        self.store.index.lag = seconds

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    # -- a client for tests (out-of-band edits, tests of the fake) ----------------------

    def client(self) -> secretmanager.SecretManagerServiceClient:
        channel = grpc.insecure_channel(self.address)
        return secretmanager.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))

    # -- RPC plumbing -----------------------------------------------------------------

    def _authenticate(self, context: grpc.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata())
        header = str(metadata.get("authorization", ""))
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        if self.credentials is None or not self.credentials.accepts(token):
            raise FakeError(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)

    def _before_call(self, method: str, request: Any) -> _Fault | None:
        """Count the call; raise its injected fault or denial; return a fault for after the call."""
        with self._lock:
            self.calls[method] += 1
            kind = family(method)
            if kind is not None and self._retry_until.get(kind, 0.0) > time.monotonic():
                self.early[kind] += 1
            for fault in self._faults:
                if fault.remaining > 0 and (fault.methods is None or method in fault.methods) and (
                        fault.where is None or fault.where in _resource_of(request)):
                    fault.remaining -= 1
                    if fault.after:
                        return fault
                    if fault.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                        self._retry_after(kind, fault.retry_delay)
                    raise FakeError(fault.code, _fault_message(fault.code), retry_delay=fault.retry_delay)
            over = self.quota.admit(method, _resource_of(request)) if self.quota is not None else None
            if over is not None:
                wait, project_wide = over
                if project_wide:  # a secret's own limit tells only that secret's writers to wait
                    self._retry_after(kind, wait)
                raise FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, _quota_message(method), retry_delay=wait)
            checked = (PERMISSIONS[method], *assets.ALSO.get(method, ())) if method in PERMISSIONS else ()
            grants = self._grants
            missing = [p for p in checked if grants is not None and not grants.allows(p, _resource_of(request))]
            permission = missing[0] if missing else PERMISSIONS.get(method)
            refused = method in self._denied or bool(missing)
            if refused:
                raise FakeError(grpc.StatusCode.PERMISSION_DENIED,
                                f"Permission '{permission or method}' denied for resource "
                                f"'{_resource_of(request)}' (or it may not exist).")
        return None

    def _retry_after(self, kind: str | None, delay: float | None) -> None:
        """Remember until when ``kind``'s callers were told to wait (the lock is held)."""
        if kind is not None and delay is not None:
            self._retry_until[kind] = max(self._retry_until.get(kind, 0.0), time.monotonic() + delay)

    def _wrap(self, method: str, body: Callable[[Any], Any], *,
              authenticated: bool) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                if authenticated:
                    self._authenticate(context)
                lost = self._before_call(method, request)
                response = body(request)
                if lost is not None:
                    raise FakeError(lost.code, _fault_message(lost.code))
                return response
            except FakeError as exc:
                _abort(context, exc)
        return handler

    def _handlers(self, *, authenticated: bool) -> dict[str, grpc.RpcMethodHandler]:
        sm = secretmanager
        s = self  # the store is replaced on reset: always go through self.store
        table: dict[str, tuple[Any, Any, Callable[[Any], Any]]] = {
            "ListSecrets": (_pb(sm.ListSecretsRequest), _pb(sm.ListSecretsResponse),
                            lambda r: s.store.list_secrets(r.parent, r.page_size, r.page_token, r.filter,
                                                           cap=s.max_page_size)),
            "CreateSecret": (_pb(sm.CreateSecretRequest), _pb(sm.Secret),
                             lambda r: s.store.create_secret(r.parent, r.secret_id, r.secret)),
            "GetSecret": (_pb(sm.GetSecretRequest), _pb(sm.Secret), lambda r: s.store.get_secret(r.name)),
            "UpdateSecret": (_pb(sm.UpdateSecretRequest), _pb(sm.Secret),
                             lambda r: s.store.update_secret(r.secret, r.update_mask)),
            "DeleteSecret": (_pb(sm.DeleteSecretRequest), empty_pb2.Empty,
                             lambda r: s.store.delete_secret(r.name, r.etag) or empty_pb2.Empty()),
            "AddSecretVersion": (_pb(sm.AddSecretVersionRequest), _pb(sm.SecretVersion),
                                 lambda r: s.store.add_secret_version(r.parent, r.payload)),
            "GetSecretVersion": (_pb(sm.GetSecretVersionRequest), _pb(sm.SecretVersion),
                                 lambda r: s.store.get_secret_version(r.name)),
            "AccessSecretVersion": (_pb(sm.AccessSecretVersionRequest), _pb(sm.AccessSecretVersionResponse),
                                    lambda r: s.store.access_secret_version(r.name)),
            "ListSecretVersions": (_pb(sm.ListSecretVersionsRequest), _pb(sm.ListSecretVersionsResponse),
                                   lambda r: s.store.list_secret_versions(r.parent, r.page_size, r.page_token,
                                                                          r.filter, cap=s.max_page_size)),
            "DisableSecretVersion": (_pb(sm.DisableSecretVersionRequest), _pb(sm.SecretVersion),
                                     lambda r: s.store.change_version_state(r.name, r.etag, State.DISABLED)),
            "EnableSecretVersion": (_pb(sm.EnableSecretVersionRequest), _pb(sm.SecretVersion),
                                    lambda r: s.store.change_version_state(r.name, r.etag, State.ENABLED)),
            "DestroySecretVersion": (_pb(sm.DestroySecretVersionRequest), _pb(sm.SecretVersion),
                                     lambda r: s.store.change_version_state(r.name, r.etag, State.DESTROYED)),
            "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: s.store.get_iam_policy(r.resource, r.options.requested_policy_version)),
            "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: s.store.set_iam_policy(r.resource, r.policy)),
            "TestIamPermissions": (iam_policy_pb2.TestIamPermissionsRequest, iam_policy_pb2.TestIamPermissionsResponse,
                                   lambda r: iam_policy_pb2.TestIamPermissionsResponse(
                                       permissions=s.store.test_iam_permissions(r.resource, list(r.permissions)))),
        }
        return {
            method: grpc.unary_unary_rpc_method_handler(
                self._wrap(method, body, authenticated=authenticated), request_deserializer=request.FromString,
                response_serializer=response.SerializeToString)
            for method, (request, response, body) in table.items()
        }


def _fault_message(code: grpc.StatusCode) -> str:
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "Quota exceeded for quota metric 'Read requests' of service 'secretmanager.googleapis.com'."
    if code is grpc.StatusCode.UNAVAILABLE:
        return "The service is currently unavailable."
    return f"injected {code.name}"


def _quota_message(method: str) -> str:
    metric = {"write": "Write requests", "access": "Access requests"}.get(family(method) or "", "Read requests")
    return f"Quota exceeded for quota metric '{metric}' of service 'secretmanager.googleapis.com'."


def _abort(context: grpc.ServicerContext, exc: FakeError) -> None:
    status = status_pb2.Status(code=getattr(code_pb2, exc.code.name), message=exc.message)
    if exc.retry_delay is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(exc.retry_delay), nanos=int((exc.retry_delay % 1) * 1e9)))
        status.details.add().Pack(info)
    context.abort_with_status(rpc_status.to_status(status))

"""The fake served over real gRPC: ``google.cloud.secretmanager.v1.SecretManagerService``,
and beside it Resource Manager and IAM roles (:mod:`.iam_services`, state in ``directory``).

The real ``SecretManagerServiceClient`` talks to it over its default gRPC transport on a
127.0.0.1 ephemeral port. Besides the API it offers what tests and benchmarks need:

- ``calls``: a counter of RPCs by method name (failed ones included, as quotas count them);
- ``inject(code, times, methods=..., retry_delay=...)``: the next ``times`` matching calls
  fail with ``code`` (RESOURCE_EXHAUSTED carries a ``google.rpc.RetryInfo`` when a delay
  is given, as Google APIs do);
- ``deny(*methods)``: those methods answer PERMISSION_DENIED naming the IAM permission,
  worded like the real service;
- ``reset()``: an empty service, no faults, zeroed counters.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
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

from tests.fakes.gcp import iam_services
from tests.fakes.gcp.directory import Directory
from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.store import State, Store

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
}


@dataclass
class _Fault:
    code: grpc.StatusCode
    remaining: int
    methods: frozenset[str] | None
    retry_delay: float | None


def _pb(cls: Any) -> Any:
    return cls.pb()


def _resource_of(request: Any) -> str:
    for attr in ("name", "parent", "resource"):
        if hasattr(request, attr) and getattr(request, attr):
            return str(getattr(request, attr))
    if hasattr(request, "secret"):
        return str(request.secret.name)
    return ""


class FakeSecretManager:
    """An in-process Secret Manager on ``127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.store = Store()
        self.directory = Directory()
        self.calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._denied: set[str] = set()
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeSecretManager:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="fake-gcp"),
                             options=[("grpc.max_send_message_length", -1),
                                      ("grpc.max_receive_message_length", -1),
                                      ("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, self._handlers()),
                                         *iam_services.handlers(self, self._wrap)))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.store = Store()
            self.directory = Directory()
            self.calls.clear()
            self._faults.clear()
            self._denied.clear()

    # -- switches ---------------------------------------------------------------------

    def inject(self, code: grpc.StatusCode, times: int = 1, *, methods: Iterable[str] | None = None,
               retry_delay: float | None = None) -> None:
        """Fail the next ``times`` calls (of ``methods``, or any) with ``code``."""
        with self._lock:
            self._faults.append(_Fault(code, times, frozenset(methods) if methods else None, retry_delay))

    def deny(self, *methods: str) -> None:
        """Answer PERMISSION_DENIED to ``methods`` until reset."""
        with self._lock:
            self._denied.update(methods)

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    # -- a client for tests (out-of-band edits, tests of the fake) ----------------------

    def client(self) -> secretmanager.SecretManagerServiceClient:
        channel = grpc.insecure_channel(self.address)
        return secretmanager.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))

    # -- RPC plumbing -----------------------------------------------------------------

    def _before_call(self, method: str, request: Any) -> None:
        with self._lock:
            self.calls[method] += 1
            for fault in self._faults:
                if fault.remaining > 0 and (fault.methods is None or method in fault.methods):
                    fault.remaining -= 1
                    raise FakeError(fault.code, _fault_message(fault.code), retry_delay=fault.retry_delay)
            if method in self._denied:
                raise FakeError(grpc.StatusCode.PERMISSION_DENIED,
                                f"Permission '{PERMISSIONS.get(method, method)}' denied for resource "
                                f"'{_resource_of(request)}' (or it may not exist).")

    def _wrap(self, method: str, body: Callable[[Any], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                self._before_call(method, request)
                return body(request)
            except FakeError as exc:
                _abort(context, exc)
        return handler

    def _handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        sm = secretmanager
        s = self  # the store is replaced on reset: always go through self.store
        table: dict[str, tuple[Any, Any, Callable[[Any], Any]]] = {
            "ListSecrets": (_pb(sm.ListSecretsRequest), _pb(sm.ListSecretsResponse),
                            lambda r: s.store.list_secrets(r.parent, r.page_size, r.page_token, r.filter)),
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
                                                                          r.filter)),
            "DisableSecretVersion": (_pb(sm.DisableSecretVersionRequest), _pb(sm.SecretVersion),
                                     lambda r: s.store.change_version_state(r.name, r.etag, State.DISABLED)),
            "EnableSecretVersion": (_pb(sm.EnableSecretVersionRequest), _pb(sm.SecretVersion),
                                    lambda r: s.store.change_version_state(r.name, r.etag, State.ENABLED)),
            "DestroySecretVersion": (_pb(sm.DestroySecretVersionRequest), _pb(sm.SecretVersion),
                                     lambda r: s.store.change_version_state(r.name, r.etag, State.DESTROYED)),
            "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: s.store.get_iam_policy(r.resource)),
            "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: s.store.set_iam_policy(r.resource, r.policy)),
            "TestIamPermissions": (iam_policy_pb2.TestIamPermissionsRequest, iam_policy_pb2.TestIamPermissionsResponse,
                                   lambda r: iam_policy_pb2.TestIamPermissionsResponse(
                                       permissions=s.store.test_iam_permissions(r.resource, list(r.permissions)))),
        }
        return {
            method: grpc.unary_unary_rpc_method_handler(
                self._wrap(method, body), request_deserializer=request.FromString,
                response_serializer=response.SerializeToString)
            for method, (request, response, body) in table.items()
        }


def _fault_message(code: grpc.StatusCode) -> str:
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "Quota exceeded for quota metric 'Read requests' of service 'secretmanager.googleapis.com'."
    if code is grpc.StatusCode.UNAVAILABLE:
        return "The service is currently unavailable."
    return f"injected {code.name}"


def _abort(context: grpc.ServicerContext, exc: FakeError) -> None:
    status = status_pb2.Status(code=getattr(code_pb2, exc.code.name), message=exc.message)
    if exc.retry_delay is not None:
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
            seconds=int(exc.retry_delay), nanos=int((exc.retry_delay % 1) * 1e9)))
        status.details.add().Pack(info)
    context.abort_with_status(rpc_status.to_status(status))

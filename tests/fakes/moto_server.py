"""AWS for tests: a real moto server on 127.0.0.1, and a fault-injecting proxy in front of it.

``moto_server`` is one ``ThreadedMotoServer`` per test session on an ephemeral port; tests
reset its state with ``POST /moto-api/reset``. :class:`FaultProxy` forwards requests to it
and answers chosen operations with a canned AWS error (throttling, 5xx, access denied, or
an AWS behaviour moto does not reproduce) for the first N calls, can rewrite ListSecrets
pages (AWS's listing is eventually consistent) or shrink them (``max_results``: AWS may
return fewer than asked for), can forward a call and drop its answer (``lose``), and logs
every operation it sees, so tests drive the real boto3 client through real failures.
CloudTrail's event history (``LookupEvents``, which moto lacks) is served by the same server
(:mod:`tests.fakes.cloudtrail`), from the Secrets Manager writes that reach moto.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from moto.server import ThreadedMotoServer

from tests.fakes.cloudtrail import EventHistory
from tests.fakes.quota import QuotaBuckets

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
         "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


# Secrets Manager's published quotas per account and region ("Combined rate of ... API
# requests"), by family, as the fake proxy enforces them (requests per second).
AWS_FAMILIES = {
    "ListSecrets": "list", "DescribeSecret": "read", "GetSecretValue": "read", "BatchGetSecretValue": "batch",
    "GetResourcePolicy": "policy", "PutResourcePolicy": "policy", "DeleteResourcePolicy": "policy",
    "ValidateResourcePolicy": "policy", "PutSecretValue": "write", "UpdateSecret": "write",
    "UpdateSecretVersionStage": "write", "ReplicateSecretToRegions": "write", "RemoveRegionsFromReplication": "write",
    "StopReplicationToReplica": "write", "RestoreSecret": "restore", "TagResource": "tag", "UntagResource": "tag",
    "CreateSecret": "create", "DeleteSecret": "delete",
    "LookupEvents": "events",  # CloudTrail: 2 per second per account and region
}
AWS_QUOTAS = {"list": 100.0, "read": 10_000.0, "batch": 100.0, "policy": 50.0, "write": 50.0, "restore": 50.0,
              "tag": 50.0, "create": 50.0, "delete": 50.0, "events": 2.0}


@dataclass
class MotoServer:
    """A running moto server."""

    server: ThreadedMotoServer
    url: str
    trail: EventHistory  # CloudTrail's event history of this server (reset with it)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def serialised(app: Any) -> Any:
    """moto's backends are not thread-safe (concurrent creates break its dict iteration with a
    500): let the threaded server run one request at a time, as each AWS secret would."""
    lock = threading.Lock()

    def wsgi(environ: Any, start_response: Any) -> Any:
        with lock:
            return list(app(environ, start_response))

    return wsgi


def start_moto() -> MotoServer:
    # moto's werkzeug server logs every request; tests want quiet output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    assert server._server is not None
    trail = EventHistory(server._server.app)
    server._server.app = serialised(trail)  # the handler reads server.app per request
    host, port = server.get_host_and_port()
    return MotoServer(server, f"http://{host}:{port}", trail)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the whole test session (reset it between tests)."""
    moto = start_moto()
    yield moto
    moto.server.stop()


@dataclass
class Fault:
    operation: str
    code: str
    status: int
    times: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    lost: bool = False  # forward the call, then drop the connection without its answer


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of moto that injects AWS errors."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.faults: list[Fault] = []
        self.seen: list[str] = []  # every operation received, in order (faulted ones included)
        self.injected: list[str] = []
        # Rewrites each ListSecrets page, e.g. to play AWS's eventually consistent listing.
        self.list_filter: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
        # The most secrets one ListSecrets page holds, whatever MaxResults asks for.
        self.max_results: int | None = None
        # AWS's published per-family quotas, enforced when set (see enforce_quota).
        self.quota: QuotaBuckets | None = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, operation: str, code: str = "ThrottlingException", *, times: int = 1, status: int = 400,
             message: str = "Rate exceeded", headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` calls of ``operation`` with an AWS error."""
        with self.lock:
            self.faults.append(Fault(operation, code, status, times, message, dict(headers or {})))

    def enforce_quota(self, rates: dict[str, float] | None = None) -> QuotaBuckets:
        """Throttle requests beyond Secrets Manager's per-family quotas with AWS's ThrottlingException."""
        self.quota = QuotaBuckets(rates or AWS_QUOTAS)
        return self.quota

    def lose(self, operation: str, *, times: int = 1) -> None:
        """Forward the next ``times`` calls of ``operation``, then drop each connection unanswered."""
        with self.lock:
            self.faults.append(Fault(operation, "", 0, times, "", lost=True))

    def _take(self, operation: str) -> Fault | None:
        with self.lock:
            self.seen.append(operation)
            for fault in self.faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    self.injected.append(operation)
                    return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1]
                fault = proxy._take(operation)
                if fault is None and proxy.quota is not None and \
                        proxy.quota.admit([AWS_FAMILIES.get(operation, "")]) is not None:
                    fault = Fault(operation, "ThrottlingException", 400, 0, "Rate exceeded", {})
                if fault is not None and not fault.lost:
                    payload = json.dumps({"__type": fault.code, "message": fault.message}).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in fault.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if operation == "ListSecrets" and proxy.max_results is not None:
                    request = json.loads(body or b"{}")
                    request["MaxResults"] = min(int(request.get("MaxResults") or 100), proxy.max_results)
                    body = json.dumps(request).encode()
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port,
                                                  timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "connection", "content-length")}
                    headers["Content-Length"] = str(len(body))
                    conn.request("POST", self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                if fault is not None:  # performed upstream; the answer is lost on the way back
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if operation == "ListSecrets" and response.status == 200 and proxy.list_filter is not None:
                    page = json.loads(data)
                    page["SecretList"] = proxy.list_filter(page.get("SecretList", []))
                    data = json.dumps(page).encode()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

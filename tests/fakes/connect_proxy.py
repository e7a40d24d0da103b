"""An HTTP CONNECT proxy on 127.0.0.1 that sends every tunnel to one local server.

gRPC (``grpc_proxy``) and ``requests`` (``https_proxy``) open a tunnel with
``CONNECT host:port`` and run TLS through it to ``host``. Pointing every tunnel at a fake
lets a test reach a cloud's real host names (a regional endpoint, a private endpoint)
without DNS: the client still resolves nothing, verifies the fake's certificate for that
name against the test CA, and the proxy records which host it asked for.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from socketserver import BaseRequestHandler, ThreadingTCPServer


class ConnectProxy:
    """Records each CONNECT target and tunnels it to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.targets: list[str] = []  # "host:port" of every tunnel asked for, in order
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="connect-proxy", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, target: str) -> None:
        with self._lock:
            self.targets.append(target)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseRequestHandler], proxy: ConnectProxy) -> None:
        super().__init__(address, handler)
        self.proxy = proxy


class _Handler(BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > 16384:
                return
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.split(" ", 1)[0]
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        self.server.proxy.record(target)
        with socket.create_connection(self.server.proxy.upstream, timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            leftover = head.split(b"\r\n\r\n", 1)[1]
            if leftover:
                upstream.sendall(leftover)
            _relay(client, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    peers[sock].shutdown(socket.SHUT_WR)
                return
            peers[sock].sendall(data)

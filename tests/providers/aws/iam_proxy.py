"""An IAM proxy in front of moto that paginates GetAccountAuthorizationDetails as AWS does.

moto answers GetAccountAuthorizationDetails in one page whatever ``MaxItems`` says
(``IsTruncated`` is always false); AWS returns at most ``MaxItems`` entities per page, "might
return fewer", and hands a ``Marker`` for the next. This proxy forwards each request to moto,
then cuts moto's one answer into pages of ``page_size`` entities (users, groups, roles,
policies, in that order), so the real boto3 client sees AWS's pagination on the wire. It can
also answer with AccessDenied, or hand back the same marker forever, and it counts the
operations it sees.
"""

from __future__ import annotations

import http.client
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NS = "https://iam.amazonaws.com/doc/2010-05-08/"
LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
OPERATION = "GetAccountAuthorizationDetails"
DENIED = (b'<ErrorResponse xmlns="' + NS.encode() + b'"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
          b"<Message>User is not authorized to perform: iam:GetAccountAuthorizationDetails</Message></Error>"
          b"<RequestId>denied</RequestId></ErrorResponse>")


def _tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def paginate(body: bytes, marker: str | None, page_size: int, *, stuck: bool = False) -> bytes:
    """One page of moto's complete GetAccountAuthorizationDetails answer."""
    ET.register_namespace("", NS)
    root = ET.fromstring(body)
    result = root.find(_tag(f"{OPERATION}Result"))
    assert result is not None, body[:200]
    entities: list[tuple[str, ET.Element]] = []
    for name in LISTS:
        container = result.find(_tag(name))
        if container is not None:
            entities.extend((name, member) for member in list(container))
            container.clear()
    start = int(marker or 0)
    end = start + page_size
    for name, member in entities[start:end]:
        container = result.find(_tag(name))
        if container is None:
            container = ET.SubElement(result, _tag(name))
        container.append(member)
    for element in result.findall(_tag("IsTruncated")) + result.findall(_tag("Marker")):
        result.remove(element)
    truncated = end < len(entities)
    ET.SubElement(result, _tag("IsTruncated")).text = "true" if truncated else "false"
    if truncated:
        ET.SubElement(result, _tag("Marker")).text = str(start if stuck else end)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class IamProxy:
    """An HTTP proxy on 127.0.0.1 that paginates moto's IAM authorization details."""

    def __init__(self, upstream: str, page_size: int = 1000) -> None:
        self.upstream = urlsplit(upstream)
        self.page_size = page_size
        self.deny = False  # answer GetAccountAuthorizationDetails with AccessDenied
        self.stuck = False  # hand back the marker that was sent (a looping paginator)
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                operation = form.get("Action", "")
                with proxy.lock:
                    proxy.seen[operation] += 1
                if operation == OPERATION and proxy.deny:
                    self._send(403, DENIED, [("Content-Type", "text/xml")])
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port,
                                                  timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request("POST", self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                finally:
                    conn.close()
                if operation == OPERATION and response.status == 200:
                    data = paginate(data, form.get("Marker"), proxy.page_size, stuck=proxy.stuck)
                self._send(response.status, data, response.getheaders())

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

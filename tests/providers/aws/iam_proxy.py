"""An IAM proxy in front of moto that paginates GetAccountAuthorizationDetails as AWS does.

moto answers GetAccountAuthorizationDetails in one page whatever ``MaxItems`` says
(``IsTruncated`` is always false); AWS returns at most ``MaxItems`` entities per page, "might
return fewer", and hands a ``Marker`` for the next. This proxy forwards each request to moto,
then cuts moto's one answer into pages of ``page_size`` entities (users, groups, roles,
policies, in that order), so the real boto3 client sees AWS's pagination on the wire. Built on
the fault proxy of tests/fakes: it answers chosen operations with an IAM error, counts the
operations it sees, and can hand back the same marker forever.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.fakes.moto_server import FaultProxy

NS = "https://iam.amazonaws.com/doc/2010-05-08/"
LISTS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
OPERATION = "GetAccountAuthorizationDetails"


def error_xml(code: str, message: str) -> bytes:
    """An IAM error body, as the query protocol sends it."""
    error = ET.Element("ErrorResponse", xmlns=NS)
    detail = ET.SubElement(error, "Error")
    ET.SubElement(detail, "Type").text = "Sender"
    ET.SubElement(detail, "Code").text = code
    ET.SubElement(detail, "Message").text = message
    ET.SubElement(error, "RequestId").text = "iam-proxy"
    return ET.tostring(error, encoding="utf-8")


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


class IamProxy(FaultProxy):
    """The fault proxy of tests/fakes, for IAM's query protocol, paginating moto's authorization details.

    ``fail(OPERATION, "AccessDenied", status=403)`` answers with an IAM (XML) error.
    """

    def __init__(self, upstream: str, page_size: int = 1000) -> None:
        self.page_size = page_size
        self.stuck = False  # hand back the marker that was sent (a looping paginator)
        super().__init__(upstream)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                operation = form.get("Action", "")
                fault = proxy._take(operation)
                if fault is not None:
                    self._send(fault.status, error_xml(fault.code, fault.message))
                    return
                status, data = proxy.forward(self.path, body, dict(self.headers.items()))
                if operation == OPERATION and status == 200:
                    data = paginate(data, form.get("Marker"), proxy.page_size, stuck=proxy.stuck)
                self._send(status, data)

        return Handler

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """moto's answer to one request (IAM's query protocol: every answer is XML)."""
        kept = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length")}
        request = urllib.request.Request(self.upstream.geturl() + path, data=body, headers=kept, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:  # moto's own IAM errors pass through as they are
            return error.code, error.read()

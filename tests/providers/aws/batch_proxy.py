"""A Secrets Manager proxy in front of moto that answers BatchGetSecretValue as AWS can.

moto answers a batch with every secret it could read, and fails the whole call for a secret
without a current value. AWS answers each secret on its own: a value in ``SecretValues`` or
an entry ``{SecretId, ErrorCode, Message}`` in ``Errors`` — for a denied secret
(``AccessDeniedException``), one it cannot decrypt (``DecryptionFailure``), one without a
value. This proxy forwards each request to moto, less the secrets named in
``secret_errors``, which it answers in ``Errors`` itself, and can cut the answer into pages of
``page_size`` entries joined by ``NextToken``. Every other operation is the fault proxy's
of tests/fakes, unchanged; every operation is logged (``seen``) and ``fail`` applies to all.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.moto_server import FaultProxy
from tests.providers.aws.iam_proxy import IamProxy

OPERATION = "BatchGetSecretValue"
CONTENT_TYPE = "application/x-amz-json-1.1"


class BatchProxy(FaultProxy):
    """The fault proxy of tests/fakes, answering BatchGetSecretValue per secret as AWS does."""

    def __init__(self, upstream: str) -> None:
        self.secret_errors: dict[str, tuple[str, str]] = {}  # secret id -> (ErrorCode, Message)
        self.page_size: int | None = None
        super().__init__(upstream)

    def rewrite(self, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """moto's whole answer to one batch, as AWS would give the page ``request`` asks for."""
        values = list(answer.get("SecretValues", []))
        errors = list(answer.get("Errors", []))
        errors += [{"SecretId": sid, "ErrorCode": code, "Message": message}
                   for sid, (code, message) in self.secret_errors.items() if sid in request.get("SecretIdList", [])]
        if self.page_size is None:
            return {"SecretValues": values, "Errors": errors}
        start = int(request.get("NextToken") or 0)
        end = start + self.page_size
        page: dict[str, Any] = {"SecretValues": values[start:end], "Errors": errors if start == 0 else []}
        if end < len(values):
            page["NextToken"] = str(end)
        return page

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self
        fault_proxy = super()._handler()  # every other operation: the fault proxy's own handling

        class Handler(fault_proxy):  # type: ignore[valid-type,misc]
            def do_POST(self) -> None:
                if self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1] != OPERATION:
                    super().do_POST()
                    return
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fault = proxy._take(OPERATION)
                if fault is not None:
                    self._send(fault.status, json.dumps({"__type": fault.code, "message": fault.message}).encode())
                    return
                # moto is asked for the whole list (pages are cut here), less what this proxy answers itself.
                asked = [sid for sid in request.get("SecretIdList", []) if sid not in proxy.secret_errors]
                body = json.dumps({**{k: v for k, v in request.items() if k != "NextToken"}, "SecretIdList": asked})
                status, data = proxy.forward(self.path, body.encode(), dict(self.headers.items()))
                if status == 200:
                    data = json.dumps(proxy.rewrite(request, json.loads(data))).encode()
                self._send(status, data)

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    forward = IamProxy.forward  # moto's answer to one request, its errors passed through as they are

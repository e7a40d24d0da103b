"""A moto server that enforces IAM, in a process of its own.

moto can check each request's signature against the IAM users it knows and evaluate their
policies' ``Action``s (``INITIAL_NO_AUTH_ACTION_COUNT``; ``POST /moto-api/reset-auth`` sets
it). The switch is process-wide: flipped in the shared in-process server it would make every
other AWS test of the worker sign with an IAM user, so this server runs in a child process.

What moto evaluates: the ``Action`` / ``NotAction`` of the caller's identity policies, Allow
and explicit Deny. What it does not (so tests name it): ``Resource`` — Secrets Manager calls
are checked against ``*`` — and ``Condition`` keys such as ``secretsmanager:ResourceTag/…``.

moto refuses in the XML of the query protocol (HTTP 403 ``<ErrorResponse>``) even to a JSON
service; Secrets Manager answers ``{"__type": "AccessDeniedException", ...}`` with HTTP 400
(its API reference, "Common Errors"). The child rewrites those answers to AWS's form, so
clients parse the error code as they would against AWS.

``python -m tests.fakes.moto_iam`` starts the server, prints its URL and serves until its
standard input closes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
_ROOT = Path(__file__).resolve().parents[2]


class IamMoto:
    """The child process and what tests do with it: open it up, or enforce one user's policy."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.moto_iam"], cwd=_ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self._keys: tuple[str, str] | None = None  # the one enforced user's access key
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the IAM-enforcing moto server did not start ({self.url!r})")

    def _post(self, path: str, body: bytes = b"") -> None:
        # Not form-encoded: moto reads the body of reset-auth as raw data.
        request = urllib.request.Request(f"{self.url}{path}", data=body, method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def open_up(self) -> None:
        """No enforcement, and an empty account: any caller may do anything (to prepare state)."""
        self._post("/moto-api/reset-auth", b"inf")
        self._post("/moto-api/reset")
        self._keys = None

    def enforce(self, actions: Iterable[str], *, user: str = "cloudsync") -> tuple[str, str]:
        """Let ``user`` do exactly ``actions`` (on any resource), replacing what it could do before;
        from now on every request must be signed by a known user and allowed. Returns the user's
        access key id and secret."""
        self._post("/moto-api/reset-auth", b"inf")  # the IAM calls below are the test's, not the user's
        iam: Any = boto3.client("iam", region_name=REGION, endpoint_url=self.url, aws_access_key_id="setup",
                                aws_secret_access_key="setup")
        try:
            if self._keys is None:
                iam.create_user(UserName=user)
                key = iam.create_access_key(UserName=user)["AccessKey"]
                self._keys = (str(key["AccessKeyId"]), str(key["SecretAccessKey"]))
            document = {"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}]}
            iam.put_user_policy(UserName=user, PolicyName="exactly-these", PolicyDocument=json.dumps(document))
        finally:
            iam.close()
        self._post("/moto-api/reset-auth", b"0")
        return self._keys

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


_XML_ERRORS = {"AccessDenied": "AccessDeniedException"}


def aws_json_errors(app: Any) -> Any:
    """WSGI middleware: moto's XML refusals of JSON-protocol calls, as the JSON errors AWS sends."""

    def wsgi(environ: Any, start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET"):
            return app(environ, start_response)
        seen: dict[str, Any] = {}

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(app(environ, capture))
        if not (seen["status"].startswith("403") and b"<ErrorResponse" in body):
            start_response(seen["status"], seen["headers"])
            return [body]
        text = body.decode("utf-8", "replace")
        code = re.search(r"<Code>(.*?)</Code>", text)
        message = re.search(r"<Message>(.*?)</Message>", text, re.DOTALL)
        error = _XML_ERRORS.get(code[1] if code else "", code[1] if code else "AccessDeniedException")
        payload = json.dumps({"__type": error, "message": message[1] if message else ""}).encode()
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                           ("Content-Length", str(len(payload)))])
        return [payload]

    return wsgi


def main() -> None:
    from tests.fakes.moto_server import start_moto

    moto = start_moto()
    moto.trail.authorize_upstream = True  # cloudtrail:LookupEvents is checked like any other action
    assert moto.server._server is not None
    moto.server._server.app = aws_json_errors(moto.server._server.app)
    print(moto.url, flush=True)
    sys.stdin.read()  # until the parent closes it
    moto.server.stop()


if __name__ == "__main__":
    main()

"""Google credentials for the fake: a service-account key and Google's OAuth token endpoint.

A CI job that runs cloudsync with a service-account key sets ``GOOGLE_APPLICATION_CREDENTIALS``
to the key file; ``google.auth.default()`` loads it. The Secret Manager client then signs
its own short-lived JWT with the key (``always_use_jwt_access``, no token endpoint) or, when
a library asks for an access token, posts a JWT assertion to the file's ``token_uri``
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``). Both are what Google accepts,
and both are checked here: a self-signed JWT must verify against the key's public half, be
issued by the account and be unexpired; the token endpoint answers the assertion grant the
way ``oauth2.googleapis.com/token`` does and remembers the opaque token it issues.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exc
from google.auth import jwt

from tests.fakes.tls import TlsFiles, TlsHttpServer

TOKEN_LIFETIME = 3600
# The audience Google wants in an assertion, whatever token_uri the key file names.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Credentials:
    """One service account with one key, the token endpoint, and the tokens it accepts."""

    def __init__(self, tls: TlsFiles, project: str = "acme-prod") -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(20)
        self.email = f"cloudsync@{project}.iam.gserviceaccount.com"
        self.project = project
        self._private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
        self._public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
        self._tokens: dict[str, float] = {}  # opaque access token -> expiry
        self._not_before = 0.0  # JWTs issued before this moment are refused (revocation)
        self._lock = threading.Lock()
        self.exchanges = 0  # assertion grants answered by the token endpoint
        self.self_signed = 0  # calls authenticated by a self-signed JWT
        self._server = _Server(("127.0.0.1", 0), _Handler, tls.server_context(), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="gcp-oauth", daemon=True)
        self._thread.start()
        self.token_uri = f"https://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def write_key_file(self, path: Path) -> Path:
        """The service-account key file, as ``gcloud iam service-accounts keys create`` writes it."""
        path.write_text(json.dumps({
            "type": "service_account", "project_id": self.project, "private_key_id": self.key_id,
            "private_key": self._private_pem, "client_email": self.email, "client_id": "1" * 21,
            "token_uri": self.token_uri, "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "universe_domain": "googleapis.com"}))
        path.chmod(0o600)
        return path

    def revoke(self) -> None:
        """Refuse every token and JWT issued until now (a disabled key, a revoked grant)."""
        with self._lock:
            self._tokens.clear()
            self._not_before = time.time() + 1

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._not_before = 0.0
            self.exchanges = self.self_signed = 0

    def accepts(self, bearer: str) -> bool:
        """Whether ``bearer`` is an access token issued here or a valid self-signed JWT of the account."""
        with self._lock:
            expires = self._tokens.get(bearer)
        if expires is not None:
            return expires > time.time()
        claims = self._verified(bearer)
        if claims is None:
            return False
        with self._lock:
            self.self_signed += 1
        return True

    def _verified(self, token: str) -> dict[str, Any] | None:
        if token.count(".") != 2:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(token, certs={self.key_id: self._public_pem}, verify=True)
        except (ValueError, auth_exc.GoogleAuthError):
            return None  # bad signature, expired, malformed
        with self._lock:
            fresh = float(claims.get("iat", 0)) >= self._not_before
        return claims if claims.get("iss") == self.email and fresh else None

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != JWT_GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."}
        claims = self._verified(form.get("assertion", ""))
        if claims is None or claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        token = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + TOKEN_LIFETIME
            self.exchanges += 1
        return 200, {"access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}


class _Server(TlsHttpServer):
    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext,
                 credentials: Credentials) -> None:
        super().__init__(address, handler, context)
        self.credentials = credentials


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()}
        if self.path == "/token":
            status, body = self.server.credentials.exchange(form)
        else:
            status, body = 404, {"error": "not_found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

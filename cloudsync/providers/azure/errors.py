"""Turning Azure SDK exceptions into one-line :class:`ProviderError`\\ s.

Every SDK call of the adapter runs inside :func:`azure_call`, which names the operation so a
403 can say which RBAC action is missing. Service messages are reduced to their first line
(Key Vault's 403 spans several); no message ever carries a secret value — the service does
not echo values, and :func:`azure_call` additionally scrubs a value it is given.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from cloudsync.providers.azure.permissions import NEEDS
from cloudsync.providers.base import NotFoundError, ProviderError
from cloudsync.providers.errors import CallContext, ErrorKind

MAX_MESSAGE = 240
_ACTION = re.compile(r"(?:Action: |perform action )'([A-Za-z0-9./_-]{1,200})'")


class PermissionDenied(ProviderError):
    """The service refused the call (403): cloudsync's identity lacks the permission it names."""

    action: str | None = None  # the RBAC (data) action the call needs, when the table knows it


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"


def _credential_summary(message: str) -> str:
    """One line from DefaultAzureCredential's report: each attempted credential and why it failed."""
    attempts = [line.strip() for line in message.splitlines() if line.startswith("\t")]
    if not attempts:
        return _first_line(message)
    shown = [a.split(". ", 1)[0].rstrip(".") for a in attempts[:3]]
    more = f"; {len(attempts) - 3} more" if len(attempts) > 3 else ""
    return _first_line("; ".join(shown) + more)


def service_code(exc: HttpResponseError) -> tuple[str | None, str | None]:
    """(code, inner code) of a service error body, e.g. ("Conflict", "ObjectIsDeletedButRecoverable")."""
    error = exc.error
    if error is None:
        return None, None
    inner = error.innererror.get("code") if isinstance(error.innererror, dict) else None
    return error.code, inner


def _retry_after(exc: HttpResponseError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    for header, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(header)
        if raw:
            try:
                return float(raw) * scale
            except ValueError:
                return None  # an HTTP date: let the engine's backoff decide
    return None


CREDENTIALS_HINT = ("sign in with `az login`, set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run with a "
                    "managed or workload identity (AZURE_TOKEN_CREDENTIALS selects one credential)")
NETWORK_HINT = ("check the vault URL (or arm_endpoint) and that it is reachable from here (DNS, proxy, firewall, "
                "private endpoint)")


def _request_id(exc: AzureError) -> str | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    found = headers.get("x-ms-request-id") or headers.get("x-ms-correlation-request-id")
    return str(found)[:100] if found else None


def translate(exc: AzureError, operation: str, subject: str) -> ProviderError:
    """A ProviderError for an SDK exception raised by ``operation`` on ``subject``."""
    doing = f"{operation.replace('_', ' ')} {subject}".strip()
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # Raised by the credential chain before any request reached the service.
        return ProviderError(
            f"no usable Azure credential ({_credential_summary(exc.message or '')})", code="CredentialUnavailable",
            hint=CREDENTIALS_HINT, kind=ErrorKind.CREDENTIALS, operation=operation)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return ProviderError(f"{doing}: connection failed ({exc.__class__.__name__})", code=exc.__class__.__name__,
                             transient=True, kind=ErrorKind.NETWORK, hint=NETWORK_HINT, operation=operation)
    if not isinstance(exc, HttpResponseError):
        return ProviderError(f"{doing}: {exc.__class__.__name__}", code=exc.__class__.__name__, operation=operation)
    status = exc.status_code or 0
    code, inner = service_code(exc)
    detail = _first_line(exc.error.message or "") if exc.error is not None and exc.error.message else exc.reason
    label = inner or code or str(status)
    ids = CallContext(code=label, request_id=_request_id(exc), operation=operation)
    if status == 401:
        return ProviderError(f"{doing}: the service rejected the access token ({label})",
                             hint="check that the identity belongs to the vault's tenant (tenant_id); "
                                  + CREDENTIALS_HINT, kind=ErrorKind.CREDENTIALS, **ids)
    if status == 403:
        need = NEEDS.get(operation)
        # Key Vault ("Action: '...'") and ARM ("perform action '...'") name the action they checked.
        said = _ACTION.search(exc.error.message or "") if exc.error is not None else None
        action = said.group(1) if said else need.action if need else None
        scope = f" on the {need.scope}" if need else ""
        wanted = f"; it needs {action}{scope}" if action else ""
        denied = PermissionDenied(
            f"{doing}: permission denied ({label}){wanted}", kind=ErrorKind.PERMISSION, permission=action,
            hint="grant cloudsync's identity a role with that permission; "
                 "`cloudsync permissions --target <target>` prints the minimal set", **ids)
        denied.action = need.action if need else None
        return denied
    if status == 429 or status == 408 or status >= 500:
        kind = ErrorKind.THROTTLED if status == 429 else ErrorKind.UNAVAILABLE
        what = "throttling" if status == 429 else "unavailable"
        return ProviderError(f"{doing}: the service is {what} (HTTP {status}, {label})", transient=True,
                             retry_after=_retry_after(exc), kind=kind, **ids)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        ids["code"] = "NotFound"  # what the adapter tests for, whatever Key Vault's inner code
        return NotFoundError(f"{doing}: not found", **ids)
    kind = ErrorKind.CONFLICT if status in (409, 412) else ErrorKind.OTHER
    return ProviderError(f"{doing}: HTTP {status} {label}: {detail}", kind=kind, **ids)


@contextlib.contextmanager
def azure_call(operation: str, subject: str = "", *, value: str | None = None) -> Iterator[None]:
    """Run SDK calls of ``operation``; SDK exceptions leave as ProviderError (``value`` scrubbed)."""
    try:
        yield
    except AzureError as exc:
        error = translate(exc, operation, subject)
        if value and value in error.message:
            error.message = error.message.replace(value, "(sensitive)")
            error.args = (error.message,)
        raise error from None

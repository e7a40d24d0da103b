"""Turn google-api-core and google-auth failures into :class:`ProviderError` (never a payload).

The service's own message is kept (it names the resource and, for PERMISSION_DENIED, the
permission); the request's payload never is. UNAVAILABLE, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED and INTERNAL are transient: the caller retries them.
"""

from __future__ import annotations

import re

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from cloudsync.providers.errors import CallContext, ErrorKind, ProviderError

CREDENTIALS_HINT = ("run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a "
                    "service account key file, or run with an attached service account / workload identity")
NETWORK_HINT = ("check the endpoint (host:port) and that it is reachable from here (DNS, proxy, firewall, "
                "Private Service Connect); an emulator must be running")
# "Permission 'secretmanager.secrets.list' denied for resource ..." names the missing permission.
_DENIED = re.compile(r"[Pp]ermission '?([a-z]+(?:\.[a-zA-Z]+){2,})'? denied")

_THROTTLED = (gexc.TooManyRequests,)
_NETWORK = (gexc.ServiceUnavailable, gexc.GatewayTimeout, gexc.RetryError)
_UNAVAILABLE = (gexc.InternalServerError,)
_CONFLICT = (gexc.Conflict, gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted)


def no_credentials() -> ProviderError:
    return ProviderError("no Google credentials found (Application Default Credentials)", code="NO_CREDENTIALS",
                         hint=CREDENTIALS_HINT, kind=ErrorKind.CREDENTIALS)


def translate(method: str, resource: str, exc: Exception, *, target: str, project: str,
              permission: str) -> ProviderError:
    """A ProviderError for ``exc`` raised by ``method`` on ``resource`` (``permission``: what it needs)."""
    where = f"{method} on {resource}"
    if isinstance(exc, auth_exc.TransportError):
        return ProviderError(f"{where}: could not reach the token endpoint", code="AUTH_TRANSPORT", transient=True,
                             kind=ErrorKind.NETWORK, operation=method)
    if isinstance(exc, auth_exc.GoogleAuthError):
        return ProviderError(f"{where}: the Google credentials could not be used ({exc.__class__.__name__})",
                             code="UNAUTHENTICATED", hint=CREDENTIALS_HINT, kind=ErrorKind.CREDENTIALS,
                             operation=method)
    assert isinstance(exc, gexc.GoogleAPICallError | gexc.RetryError)
    message = exc.message if isinstance(exc, gexc.GoogleAPICallError) else str(exc)
    message = " ".join(str(message).split())[:300]
    code = _status_name(exc)
    ids = CallContext(code=code, request_id=_request_id(exc), operation=method)
    if isinstance(exc, gexc.PermissionDenied):
        said = _DENIED.search(message)
        missing = said.group(1) if said else permission
        # Folder and organization permissions are granted there, not in the project.
        place = f"on {resource}" if resource.startswith(("folders/", "organizations/")) else f"in project {project}"
        return ProviderError(
            f"permission denied: {where} needs {missing}", kind=ErrorKind.PERMISSION, permission=missing,
            hint=f"grant {missing} to cloudsync's identity {place} "
                 f"(`cloudsync permissions --target {target}` prints a least-privilege role)", **ids)
    if isinstance(exc, gexc.Unauthenticated):
        return ProviderError(f"{where}: the credentials were rejected", hint=CREDENTIALS_HINT,
                             kind=ErrorKind.CREDENTIALS, **ids)
    if isinstance(exc, (*_THROTTLED, *_NETWORK, *_UNAVAILABLE)):
        kind = ErrorKind.THROTTLED if isinstance(exc, _THROTTLED) else \
            ErrorKind.NETWORK if isinstance(exc, _NETWORK) else ErrorKind.UNAVAILABLE
        return ProviderError(f"{where}: {message}", transient=True, retry_after=_retry_delay(exc), kind=kind,
                             hint=NETWORK_HINT if kind is ErrorKind.NETWORK else None, **ids)
    kind = ErrorKind.NOT_FOUND if isinstance(exc, gexc.NotFound) else \
        ErrorKind.CONFLICT if isinstance(exc, _CONFLICT) else ErrorKind.OTHER
    return ProviderError(f"{where}: {message}", kind=kind, **ids)


def _status_name(exc: Exception) -> str:
    status = getattr(exc, "grpc_status_code", None)
    if status is not None:
        return str(status.name)
    return "DEADLINE_EXCEEDED" if isinstance(exc, gexc.RetryError) else exc.__class__.__name__


def _request_id(exc: Exception) -> str | None:
    """The id of a ``google.rpc.RequestInfo`` detail, when the service sent one."""
    for detail in getattr(exc, "details", None) or ():
        found = getattr(detail, "request_id", None)
        if isinstance(found, str) and found:
            return found[:100]
    return None


def _retry_delay(exc: Exception) -> float | None:
    """The delay a ``google.rpc.RetryInfo`` detail asks for, if the service sent one."""
    for detail in getattr(exc, "details", None) or ():
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and hasattr(delay, "ToTimedelta"):
            return float(delay.ToTimedelta().total_seconds())
    return None

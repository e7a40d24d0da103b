"""What went wrong in a cloud, in one shape for every provider.

Each cloud's ``providers/<kind>/errors.py`` maps its SDK's exceptions onto
:class:`ProviderError`: a :class:`ErrorKind` a user can act on (credentials, network,
permission denied, throttled...), the operation that failed, the permission the cloud said
was missing, a hint in that cloud's own terms, and — for ``--verbose`` — the SDK's error
code and the request id a support ticket needs. The engine renders it once, with the
target's name and where the target points (:func:`describe`).

Nothing here ever holds a value: adapters drop a service message whenever the request
carried one, and credentials are never part of an SDK's exception text that is kept.
"""

from __future__ import annotations

import enum
from typing import ClassVar, TypedDict

from cloudsync.safe_text import TEXT_LIMIT, safe_text


class ErrorKind(enum.StrEnum):
    """What kind of failure, as a user fixes it."""

    CREDENTIALS = "credentials"  # none found, expired or rejected
    NETWORK = "network"  # the endpoint could not be reached, or the connection broke
    PERMISSION = "permission denied"  # the identity lacks a permission
    THROTTLED = "quota/throttled"  # rate or quota limits
    UNAVAILABLE = "service unavailable"  # 5xx: the cloud's side failed
    NOT_FOUND = "not found"
    CONFLICT = "conflict"  # exists already, soft-deleted, stale etag, locked
    OTHER = "error"


# Hints every cloud shares; a cloud's errors module adds its own for credentials and permissions.
NETWORK_HINT = "check the endpoint URL and that it is reachable from here (DNS, proxy, firewall, VPN)"
THROTTLED_HINT = ("the cloud's rate limits were hit even after retries; run again later, or ask for a higher quota "
                  "(cloudsync paces itself to the published limits)")
UNAVAILABLE_HINT = "the cloud failed on its side; run again later (a plan or apply converges when rerun)"
DEFAULT_HINTS = {ErrorKind.NETWORK: NETWORK_HINT, ErrorKind.THROTTLED: THROTTLED_HINT,
                 ErrorKind.UNAVAILABLE: UNAVAILABLE_HINT}


class CallContext(TypedDict, total=False):
    """What a cloud's error mapping knows about the failed call, passed on as keywords."""

    operation: str | None
    endpoint: str | None
    code: str | None
    request_id: str | None


class ProviderError(Exception):
    """A provider call failed. ``transient`` errors are retried by the apply engine.

    ``code`` is the SDK's or service's error code and ``request_id`` the cloud's id of the
    failed request: both are shown with ``--verbose``. ``endpoint`` names where the failing
    call went when that differs from the target's own location (an IAM or ARM endpoint).
    """

    default_kind: ClassVar[ErrorKind | None] = None  # a subclass's kind when the raiser names none

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False,
                 retry_after: float | None = None, hint: str | None = None, kind: ErrorKind | None = None,
                 operation: str | None = None, permission: str | None = None, request_id: str | None = None,
                 endpoint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        self.retry_after = retry_after
        self.kind = kind or self.default_kind or (ErrorKind.UNAVAILABLE if transient else ErrorKind.OTHER)
        self.hint = hint or (DEFAULT_HINTS.get(kind) if kind else None)  # a classified error gets its kind's hint
        self.operation = operation
        self.permission = permission
        self.request_id = request_id
        self.endpoint = endpoint

    def details(self) -> str:
        """The SDK's code and the request id, for ``--verbose`` ("" when there are none)."""
        parts = [f"code {self.code}"] if self.code else []
        if self.request_id:
            parts.append(f"request id {self.request_id}")
        return f" [{', '.join(parts)}]" if parts else ""


def describe(error: ProviderError, *, target: str, where: str | None, doing: str, verbose: bool) -> str:
    """One line: the target, where it points, what cloudsync was doing, the kind, the cloud's reason.

    ``where`` is the target's location (endpoint, vault URL, project) as its provider's
    rules describe it; the error's own ``endpoint`` wins when the failing call went elsewhere.
    """
    place = error.endpoint or where
    at = f" ({safe_text(place, TEXT_LIMIT)})" if place else ""
    text = f"target {target}{at}: {doing} failed ({error.kind.value}): {error.message}"
    return text + (error.details() if verbose else "")

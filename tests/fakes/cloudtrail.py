"""CloudTrail event history for tests: a WSGI layer around moto's app (moto 5.2.5 has no LookupEvents).

:class:`EventHistory` wraps the moto server's WSGI app. It journals the Secrets Manager
management writes that reach moto (from the requests themselves: the ``X-Amz-Target``
operation, the ``SecretId`` as the caller sent it, the caller's access key, this server's
clock) when moto answers them with success, and it serves CloudTrail's ``LookupEvents``
(JSON 1.1, ``X-Amz-Target: com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents``)
itself: ``StartTime``/``EndTime`` (inclusive), at most one ``LookupAttributes`` entry, up to 50
events a page with a ``NextToken``, newest first. Tests add other services' events with
:meth:`EventHistory.inject` and hold events back with :attr:`EventHistory.lag` (delivery delay).

Where it differs from AWS (public API reference and the CloudTrail user guide):

- ``CloudTrailEvent`` holds only the fields cloudsync reads (``eventVersion``, ``eventTime``,
  ``eventSource``, ``eventName``, ``awsRegion``, ``userIdentity.accessKeyId``,
  ``requestParameters.secretId``, ``responseElements``); AWS's record has many more.
- Failed calls are not journaled (AWS records them with ``errorCode``); ``Resources`` holds the
  secret id as sent (AWS resolves it to the ARN where it can).
- Delivery is exact: an event is visible once ``lag`` seconds have passed, never later (AWS:
  "typically within an average of about 5 minutes", not guaranteed); there is no 90-day horizon.
- ``NextToken`` is an offset into the result of the same query, and the per-account 2 TPS quota
  is enforced only by the fault proxy (``FaultProxy.enforce_quota``), as for Secrets Manager.
- With :attr:`EventHistory.authorize_upstream` (the IAM-enforcing server, tests/fakes/moto_iam.py)
  each LookupEvents is first shown to moto, whose IAM check refuses it (HTTP 403) unless the
  caller may ``cloudtrail:LookupEvents``; what moto answers otherwise (it has no such operation)
  is ignored.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOOKUP_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
SECRETS_PREFIX = "secretsmanager."
SECRETS_SOURCE = "secretsmanager.amazonaws.com"
PAGE_MAX = 50
# Secrets Manager's management writes, as CloudTrail records them.
JOURNALED = frozenset({
    "CreateSecret", "UpdateSecret", "PutSecretValue", "DeleteSecret", "RestoreSecret", "TagResource",
    "UntagResource", "PutResourcePolicy", "DeleteResourcePolicy", "UpdateSecretVersionStage",
    "ReplicateSecretToRegions", "RemoveRegionsFromReplication",
})
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_ATTRIBUTES = {"EventId": "id", "EventName": "name", "EventSource": "source", "Username": "username",
               "AccessKeyId": "access_key", "ResourceName": "resource", "ReadOnly": "read_only"}


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    source: str
    time: float  # epoch seconds, this server's clock
    access_key: str
    resource: str  # the secret id as the caller sent it
    region: str
    username: str = "tester"
    read_only: str = "false"

    def shape(self) -> dict[str, Any]:
        """The event as LookupEvents returns it."""
        record = {"eventVersion": "1.09", "eventTime": _iso(self.time), "eventSource": self.source,
                  "eventName": self.name, "awsRegion": self.region, "eventID": self.id,
                  "userIdentity": {"type": "IAMUser", "accessKeyId": self.access_key},
                  "requestParameters": {"secretId": self.resource}, "responseElements": None,
                  "readOnly": False, "managementEvent": True, "eventCategory": "Management"}
        return {"EventId": self.id, "EventName": self.name, "ReadOnly": self.read_only,
                "AccessKeyId": self.access_key, "EventTime": self.time, "EventSource": self.source,
                "Username": self.username,
                "Resources": [{"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": self.resource}],
                "CloudTrailEvent": json.dumps(record)}


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventHistory:
    """The journal and the LookupEvents endpoint, as a WSGI app wrapping ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], region: str = "us-east-1",
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.region = region
        self.clock = clock
        self.lag = 0.0  # seconds before an event is visible to LookupEvents
        self.events: list[Event] = []
        self.lookups: list[dict[str, Any]] = []  # every LookupEvents request body, for tests
        self.refuse: str | None = None  # an error code every LookupEvents call answers (e.g. AccessDeniedException)
        self.authorize_upstream = False  # let moto's IAM enforcement judge each LookupEvents first
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.lookups.clear()
            self.lag = 0.0
            self.refuse = None

    def inject(self, name: str, resource: str, *, source: str = SECRETS_SOURCE, at: float | None = None,
               access_key: str = "AKIDOTHER") -> Event:
        """Add an event as another caller (or another service) would have caused it."""
        event = Event(str(uuid.uuid4()), name, source, self.clock() if at is None else at, access_key, resource,
                      self.region)
        with self.lock:
            self.events.append(event)
        return event

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target == LOOKUP_TARGET:
            body = _body(environ)
            if self.authorize_upstream:
                refused = self._refused_upstream(environ, start_response)
                if refused is not None:
                    return refused
            return self._lookup(body, start_response)
        if environ.get("PATH_INFO") == "/moto-api/reset":
            self.reset()
        operation = target[len(SECRETS_PREFIX):] if target.startswith(SECRETS_PREFIX) else ""
        if operation not in JOURNALED:
            return self.app(environ, start_response)
        body = _body(environ)
        status: list[str] = []

        def recording(code: str, headers: Any, *rest: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *rest)

        result = list(self.app(environ, recording))
        if status and status[0].startswith("2"):
            request = json.loads(body or b"{}")
            secret = str(request.get("SecretId") or request.get("Name") or "")
            match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
            self.inject(operation, secret, access_key=match.group(1) if match else "")
        return result

    def _refused_upstream(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes] | None:
        seen: list[tuple[str, Any]] = []

        def capture(status: str, headers: Any, *_rest: Any) -> Callable[[bytes], None]:
            seen.append((status, headers))
            return lambda _data: None

        try:
            data = b"".join(self.app(environ, capture))
        except NotImplementedError:  # allowed: moto got as far as looking for the operation
            return None
        if not seen or not seen[0][0].startswith("403"):
            return None
        start_response(*seen[0])
        return [data]

    def _lookup(self, body: bytes, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = json.loads(body or b"{}")
        with self.lock:
            self.lookups.append(request)
        if self.refuse:
            return _answer(start_response, "400 Bad Request",
                           {"__type": self.refuse, "message": "User is not authorized to perform: "
                            "cloudtrail:LookupEvents"})
        attributes = request.get("LookupAttributes") or []
        if len(attributes) > 1:
            return _answer(start_response, "400 Bad Request", {"__type": "InvalidLookupAttributesException",
                                                               "message": "only one lookup attribute"})
        limit = int(request.get("MaxResults") or PAGE_MAX)
        if not 1 <= limit <= PAGE_MAX:
            return _answer(start_response, "400 Bad Request", {"__type": "InvalidMaxResultsException",
                                                               "message": "MaxResults must be 1-50"})
        start, end = request.get("StartTime"), request.get("EndTime")
        if start is not None and end is not None and float(start) > float(end):
            return _answer(start_response, "400 Bad Request", {"__type": "InvalidTimeRangeException",
                                                               "message": "StartTime is after EndTime"})
        visible_until = self.clock() - self.lag
        with self.lock:
            found = [e for e in self.events if e.time <= visible_until
                     and (start is None or e.time >= float(start)) and (end is None or e.time <= float(end))
                     and all(getattr(e, _ATTRIBUTES.get(a.get("AttributeKey"), "id")) == a.get("AttributeValue")
                             for a in attributes)]
        found.sort(key=lambda e: e.time, reverse=True)
        offset = int(request.get("NextToken") or 0)
        page = found[offset:offset + limit]
        answer: dict[str, Any] = {"Events": [e.shape() for e in page]}
        if offset + limit < len(found):
            answer["NextToken"] = str(offset + limit)
        return _answer(start_response, "200 OK", answer)


def _body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for the app behind."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(data)
    return bytes(data)


def _answer(start_response: Callable[..., Any], status: str, payload: dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data))),
                            ("x-amzn-RequestId", str(uuid.uuid4()))])
    return [data]

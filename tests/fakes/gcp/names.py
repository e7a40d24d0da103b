"""Resource names of the fake Secret Manager, parsed the way the public API reads them.

Requests may name a project by id or by number; responses always carry the number, as
the real service does (``projects/my-proj/secrets/x`` comes back as
``projects/123456789012/secrets/x``), so a client that compares names verbatim is caught.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import grpc

from tests.fakes.gcp.errors import FakeError

SECRET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PARENT_RE = re.compile(r"^projects/([^/]+)(?:/locations/([^/]+))?$")
_SECRET_RE = re.compile(r"^projects/([^/]+)(?:/locations/([^/]+))?/secrets/([^/]+)$")
_VERSION_RE = re.compile(r"^projects/([^/]+)(?:/locations/([^/]+))?/secrets/([^/]+)/versions/([^/]+)$")


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (numbers pass through)."""
    if project.isdigit():
        return project
    digest = int(hashlib.sha256(project.encode()).hexdigest()[:12], 16)
    return str(100_000_000_000 + digest % 900_000_000_000)


@dataclass(frozen=True)
class Parent:
    project: str  # number
    location: str | None

    @property
    def name(self) -> str:
        base = f"projects/{self.project}"
        return f"{base}/locations/{self.location}" if self.location else base

    def secret(self, secret_id: str) -> str:
        return f"{self.name}/secrets/{secret_id}"


def parse_parent(text: str) -> Parent:
    match = _PARENT_RE.match(text)
    if not match:
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                        f"Invalid resource field value in the request: parent {text!r}")
    return Parent(project_number(match[1]), match[2])


def parse_secret(text: str) -> tuple[Parent, str]:
    """(parent, canonical secret name) of ``projects/*[/locations/*]/secrets/*``."""
    match = _SECRET_RE.match(text)
    if not match or not SECRET_ID_RE.match(match[3]):
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource field value in the request: {text!r}")
    parent = Parent(project_number(match[1]), match[2])
    return parent, parent.secret(match[3])


def parse_version(text: str) -> tuple[str, str]:
    """(canonical secret name, version part) of ``.../secrets/*/versions/*``."""
    match = _VERSION_RE.match(text)
    if not match or not SECRET_ID_RE.match(match[3]):
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource field value in the request: {text!r}")
    parent = Parent(project_number(match[1]), match[2])
    return parent.secret(match[3]), match[4]

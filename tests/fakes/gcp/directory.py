"""The resource hierarchy and IAM of the fake: projects, folders, organizations, their IAM
policies, and IAM roles (predefined and custom).

Served over gRPC by :mod:`tests.fakes.gcp.iam_services` as Cloud Resource Manager v3
(``Projects``, ``Folders``, ``Organizations``) and the IAM admin API (``google.iam.admin.v1.IAM``),
with the protobuf classes that ship with ``google-cloud-resource-manager`` and
``google-cloud-iam``. Modelled on the API reference:

- a project exists for any id (as in the Secret Manager fake) and answers with its number
  (``projects/123…``); its parent is none until a test places it (:meth:`Directory.place`);
  folders and organizations exist once a test adds them; asking for one that does not
  exist is ``PERMISSION_DENIED``, as Resource Manager answers so as not to reveal existence;
- ``GetIamPolicy`` honours ``options.requested_policy_version``: 0, 1 or 3 (anything else is
  ``INVALID_ARGUMENT``); a conditional binding read below version 3 comes back without its
  condition and with ``_withcond_<hash>`` appended to its role, as IAM does;
  ``SetIamPolicy`` checks the etag (``ABORTED`` on a stale one), roles and members, and that
  conditions come with version 3;
- ``GetRole`` answers predefined roles from :data:`PREDEFINED` and custom roles
  (``projects/P/roles/R``, ``organizations/O/roles/R``) created with ``CreateRole``; a deleted
  custom role is still returned, with ``deleted: true``; ``UpdateRole`` replaces the fields its
  mask names (etag checked).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import iam_admin_v1, resourcemanager_v3
from google.iam.v1 import policy_pb2

from tests.fakes.gcp import rules
from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.names import project_number

RolePb: Any = iam_admin_v1.Role.pb()
ProjectPb: Any = resourcemanager_v3.Project.pb()
FolderPb: Any = resourcemanager_v3.Folder.pb()
OrganizationPb: Any = resourcemanager_v3.Organization.pb()
Stage = iam_admin_v1.Role.RoleLaunchStage

_PROJECT_RE = re.compile(r"^projects/([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$")
_FOLDER_RE = re.compile(r"^folders/[0-9]{1,20}$")
_ORGANIZATION_RE = re.compile(r"^organizations/[0-9]{1,20}$")
_CUSTOM_ROLE_RE = re.compile(r"^(projects|organizations)/([^/]+)/roles/([a-zA-Z0-9_.]{3,64})$")
_ROLE_ID_RE = re.compile(r"^[a-zA-Z0-9_.]{3,64}$")
_PERMISSION_RE = re.compile(r"^[a-z][a-zA-Z0-9]*(\.[a-zA-Z0-9]+){2,}$")
_DENIED = "The caller does not have permission"

_SECRET_READ = ["secretmanager.secrets.get", "secretmanager.secrets.list", "secretmanager.versions.get",
                "secretmanager.versions.list"]
# Predefined roles, by the Secret Manager roles reference (abridged to what matters here:
# the Secret Manager permissions). The basic roles are abridged further. Whether
# roles/editor carries secretmanager.versions.access is not stated there; public reports
# say an Editor is refused it (GoogleCloudPlatform/k8s-config-connector#711), so this
# table leaves it out and gives it to roles/owner. cloudsync asks IAM about both rather
# than trusting any table, and tests change these entries to show that it does.
PREDEFINED: dict[str, list[str]] = {
    "roles/secretmanager.secretAccessor": ["resourcemanager.projects.get", "secretmanager.versions.access"],
    "roles/secretmanager.admin": ["resourcemanager.projects.get", *_SECRET_READ, "secretmanager.secrets.create",
                                  "secretmanager.secrets.delete", "secretmanager.secrets.setIamPolicy",
                                  "secretmanager.secrets.getIamPolicy", "secretmanager.secrets.update",
                                  "secretmanager.versions.access", "secretmanager.versions.add",
                                  "secretmanager.versions.destroy", "secretmanager.versions.disable",
                                  "secretmanager.versions.enable"],
    "roles/secretmanager.viewer": ["resourcemanager.projects.get", *_SECRET_READ,
                                   "secretmanager.secrets.getIamPolicy"],
    "roles/secretmanager.secretVersionAdder": ["resourcemanager.projects.get", "secretmanager.versions.add"],
    "roles/secretmanager.secretVersionManager": ["resourcemanager.projects.get", "secretmanager.versions.add",
                                                 "secretmanager.versions.destroy", "secretmanager.versions.disable",
                                                 "secretmanager.versions.enable", "secretmanager.versions.get",
                                                 "secretmanager.versions.list"],
    "roles/viewer": ["resourcemanager.projects.get", *_SECRET_READ],
    "roles/editor": ["resourcemanager.projects.get", *_SECRET_READ, "secretmanager.secrets.create",
                     "secretmanager.secrets.update", "secretmanager.versions.add"],
    "roles/owner": ["resourcemanager.projects.get", "resourcemanager.projects.setIamPolicy", *_SECRET_READ,
                    "secretmanager.secrets.create", "secretmanager.secrets.update", "secretmanager.versions.add",
                    "secretmanager.versions.access"],
}


@dataclass
class _Node:
    pb: Any  # Project, Folder or Organization
    policy: Any  # policy_pb2.Policy


def _denied() -> FakeError:
    return FakeError(grpc.StatusCode.PERMISSION_DENIED, _DENIED)


class Directory:
    """Every project, folder, organization and custom role the fake knows."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._nodes: dict[str, _Node] = {}  # canonical name (projects/<number>, folders/N, organizations/N)
        self._roles: dict[str, Any] = {}  # custom roles by name
        self.predefined = {name: list(permissions) for name, permissions in PREDEFINED.items()}

    # -- set-up (what an organization's administrators did long ago) ---------------------

    def add_organization(self, name: str, display_name: str = "example.com") -> None:
        with self._lock:
            if not _ORGANIZATION_RE.match(name):
                raise ValueError(name)
            pb = OrganizationPb(name=name, display_name=display_name, directory_customer_id="C0fake",
                                state=resourcemanager_v3.Organization.State.ACTIVE)
            self._nodes[name] = _Node(pb, _empty_policy())

    def add_folder(self, name: str, parent: str, display_name: str = "") -> None:
        with self._lock:
            if not _FOLDER_RE.match(name) or parent not in self._nodes or parent.startswith("projects/"):
                raise ValueError(f"{name} under {parent}")
            pb = FolderPb(name=name, parent=parent, display_name=display_name or name,
                          state=resourcemanager_v3.Folder.State.ACTIVE)
            self._nodes[name] = _Node(pb, _empty_policy())

    def place(self, project: str, parent: str) -> None:
        """Put project ``project`` (an id) under a folder or organization added before."""
        with self._lock:
            if parent not in self._nodes or parent.startswith("projects/"):
                raise ValueError(parent)
            self._project(f"projects/{project}").pb.parent = parent

    # -- Resource Manager ----------------------------------------------------------------

    def _project(self, name: str) -> _Node:
        match = _PROJECT_RE.match(name)
        if not match:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {name!r}")
        ident = match[1]
        canonical = f"projects/{project_number(ident)}"
        node = self._nodes.get(canonical)
        if node is None:
            if ident.isdigit():
                raise _denied()  # a number nobody named: not a project of ours
            pb = ProjectPb(name=canonical, project_id=ident, display_name=ident,
                           state=resourcemanager_v3.Project.State.ACTIVE)
            node = self._nodes[canonical] = _Node(pb, _empty_policy())
        return node

    def _node(self, name: str) -> _Node:
        if name.startswith("projects/"):
            return self._project(name)
        if not (_FOLDER_RE.match(name) or _ORGANIZATION_RE.match(name)):
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {name!r}")
        node = self._nodes.get(name)
        if node is None:
            raise _denied()
        return node

    def get(self, name: str, kind: str) -> Any:
        """GetProject / GetFolder / GetOrganization."""
        with self._lock:
            if not name.startswith(f"{kind}/"):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {name!r}")
            return _copy(self._node(name).pb)

    def get_iam_policy(self, resource: str, kind: str, requested_version: int) -> Any:
        with self._lock:
            if not resource.startswith(f"{kind}/"):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {resource!r}")
            if requested_version not in (0, 1, 3):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Invalid requested policy version {requested_version}: use 0, 1 or 3.")
            policy = _copy(self._node(resource).policy)
            return policy if requested_version == 3 else _as_version_1(policy)

    def set_iam_policy(self, resource: str, kind: str, policy: Any) -> Any:
        with self._lock:
            if not resource.startswith(f"{kind}/"):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource name {resource!r}")
            node = self._node(resource)
            if policy.etag and policy.etag != node.policy.etag:
                raise FakeError(grpc.StatusCode.ABORTED, "There were concurrent policy changes. Please retry the "
                                "whole read-modify-write with exponential backoff.")
            stored = policy_pb2.Policy(version=1)
            for binding in policy.bindings:
                rules.check_role(binding.role)
                for member in binding.members:
                    rules.check_member(member)
                if binding.HasField("condition"):
                    if policy.version < 3:
                        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                        "conditional role bindings require policy version 3")
                    stored.version = 3
                if binding.members:
                    stored.bindings.add().CopyFrom(binding)
            stored.etag = os.urandom(8)
            node.policy = stored
            return _copy(stored)

    # -- IAM roles ---------------------------------------------------------------------

    def get_role(self, name: str) -> Any:
        with self._lock:
            if name.startswith("roles/"):
                permissions = self.predefined.get(name)
                if permissions is None:
                    raise FakeError(grpc.StatusCode.NOT_FOUND, f"The role named {name} was not found.")
                return RolePb(name=name, title=name.split("/", 1)[1], included_permissions=permissions,
                              stage=Stage.GA, etag=hashlib.sha256(name.encode()).digest()[:8])
            role = self._roles.get(self._custom_name(name))
            if role is None:
                raise FakeError(grpc.StatusCode.NOT_FOUND, f"The role named {name} was not found.")
            return _copy(role)

    def _custom_name(self, name: str) -> str:
        match = _CUSTOM_ROLE_RE.match(name)
        if not match:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid role name {name!r}")
        return name

    def create_role(self, parent: str, role_id: str, role: Any) -> Any:
        with self._lock:
            if not re.match(r"^(projects|organizations)/[^/]+$", parent):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid parent {parent!r}")
            if not _ROLE_ID_RE.match(role_id):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid role id {role_id!r}")
            name = f"{parent}/roles/{role_id}"
            if name in self._roles:  # a deleted role keeps its name for 37 days
                raise FakeError(grpc.StatusCode.ALREADY_EXISTS, f"A role named {role_id} in {parent} already exists.")
            _check_permissions(role.included_permissions)
            stored = _copy(role)
            stored.name = name
            stored.deleted = False
            stored.etag = os.urandom(8)
            self._roles[name] = stored
            return _copy(stored)

    def update_role(self, name: str, role: Any, paths: list[str]) -> Any:
        with self._lock:
            current = self._roles.get(self._custom_name(name))
            if current is None:
                raise FakeError(grpc.StatusCode.NOT_FOUND, f"The role named {name} was not found.")
            if role.etag and role.etag != current.etag:
                raise FakeError(grpc.StatusCode.ABORTED, "The role was changed since it was read.")
            for path in paths or ["title", "description", "included_permissions", "stage"]:
                if path not in ("title", "description", "included_permissions", "stage"):
                    raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"field {path!r} cannot be updated")
                if path == "included_permissions":
                    _check_permissions(role.included_permissions)
                    del current.included_permissions[:]
                    current.included_permissions.extend(role.included_permissions)
                else:
                    setattr(current, path, getattr(role, path))
            current.etag = os.urandom(8)
            return _copy(current)

    def delete_role(self, name: str, etag: bytes) -> Any:
        with self._lock:
            current = self._roles.get(self._custom_name(name))
            if current is None:
                raise FakeError(grpc.StatusCode.NOT_FOUND, f"The role named {name} was not found.")
            if etag and etag != current.etag:
                raise FakeError(grpc.StatusCode.ABORTED, "The role was changed since it was read.")
            current.deleted = True
            current.etag = os.urandom(8)
            return _copy(current)


def _check_permissions(permissions: Any) -> None:
    for permission in permissions:
        if not _PERMISSION_RE.match(permission):
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Permission {permission} is not valid.")


def _empty_policy() -> Any:
    return policy_pb2.Policy(version=1, etag=b"\x00\x20\x01")


def _copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _as_version_1(policy: Any) -> Any:
    """A policy as a version-1 reader sees it: conditions hidden behind ``_withcond_`` role names."""
    if policy.version < 3:
        return policy
    shown = policy_pb2.Policy(version=1, etag=policy.etag)
    for binding in policy.bindings:
        role = binding.role
        if binding.HasField("condition"):
            digest = hashlib.sha256(binding.condition.SerializeToString(deterministic=True)).hexdigest()[:20]
            role = f"{role}_withcond_{digest}"
        shown.bindings.add(role=role, members=list(binding.members))
    return shown

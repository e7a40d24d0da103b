"""Cloud Resource Manager v3 and the IAM admin API, served by the fake's gRPC server beside
Secret Manager (state in :mod:`tests.fakes.gcp.directory`).

Each RPC is known to the fake's switches by ``<Service>.<Method>`` (``Projects.GetIamPolicy``,
``IAM.GetRole``), so ``calls`` counts them apart from Secret Manager's own ``GetIamPolicy``
and ``deny("Projects.GetIamPolicy")`` refuses exactly that one, naming its permission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.cloud import iam_admin_v1, resourcemanager_v3
from google.iam.v1 import iam_policy_pb2, policy_pb2

RESOURCE_MANAGER = "google.cloud.resourcemanager.v3"
IAM_ADMIN = "google.iam.admin.v1.IAM"

# The IAM permission each RPC checks, for PERMISSION_DENIED messages.
PERMISSIONS = {
    "Projects.GetProject": "resourcemanager.projects.get",
    "Projects.GetIamPolicy": "resourcemanager.projects.getIamPolicy",
    "Projects.SetIamPolicy": "resourcemanager.projects.setIamPolicy",
    "Folders.GetFolder": "resourcemanager.folders.get",
    "Folders.GetIamPolicy": "resourcemanager.folders.getIamPolicy",
    "Folders.SetIamPolicy": "resourcemanager.folders.setIamPolicy",
    "Organizations.GetOrganization": "resourcemanager.organizations.get",
    "Organizations.GetIamPolicy": "resourcemanager.organizations.getIamPolicy",
    "Organizations.SetIamPolicy": "resourcemanager.organizations.setIamPolicy",
    "IAM.GetRole": "iam.roles.get",
    "IAM.CreateRole": "iam.roles.create",
    "IAM.UpdateRole": "iam.roles.update",
    "IAM.DeleteRole": "iam.roles.delete",
}

Body = Callable[[Any], Any]
# (method key, body) -> the handler with the fake's faults, denials and counting around it
Wrap = Callable[[str, Body], Callable[[Any, grpc.ServicerContext], Any]]


def _pb(cls: Any) -> Any:
    return cls.pb()


def _tables(fake: Any) -> dict[str, dict[str, tuple[Any, Any, Body]]]:
    """Service -> RPC -> (request type, response type, body). ``fake.directory`` is looked up per
    call: a reset replaces it."""
    rm, iam = resourcemanager_v3, iam_admin_v1

    def policy_rpcs(kind: str) -> dict[str, tuple[Any, Any, Body]]:
        return {
            "GetIamPolicy": (iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: fake.directory.get_iam_policy(r.resource, kind,
                                                                     r.options.requested_policy_version)),
            "SetIamPolicy": (iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy,
                             lambda r: fake.directory.set_iam_policy(r.resource, kind, r.policy)),
        }

    return {
        f"{RESOURCE_MANAGER}.Projects": {
            "GetProject": (_pb(rm.GetProjectRequest), _pb(rm.Project), lambda r: fake.directory.get(r.name, "projects")),
            **policy_rpcs("projects")},
        f"{RESOURCE_MANAGER}.Folders": {
            "GetFolder": (_pb(rm.GetFolderRequest), _pb(rm.Folder), lambda r: fake.directory.get(r.name, "folders")),
            **policy_rpcs("folders")},
        f"{RESOURCE_MANAGER}.Organizations": {
            "GetOrganization": (_pb(rm.GetOrganizationRequest), _pb(rm.Organization),
                                lambda r: fake.directory.get(r.name, "organizations")),
            **policy_rpcs("organizations")},
        IAM_ADMIN: {
            "GetRole": (_pb(iam.GetRoleRequest), _pb(iam.Role), lambda r: fake.directory.get_role(r.name)),
            "CreateRole": (_pb(iam.CreateRoleRequest), _pb(iam.Role),
                           lambda r: fake.directory.create_role(r.parent, r.role_id, r.role)),
            "UpdateRole": (_pb(iam.UpdateRoleRequest), _pb(iam.Role),
                           lambda r: fake.directory.update_role(r.name, r.role, list(r.update_mask.paths))),
            "DeleteRole": (_pb(iam.DeleteRoleRequest), _pb(iam.Role),
                           lambda r: fake.directory.delete_role(r.name, r.etag)),
        },
    }


def handlers(fake: Any, wrap: Wrap) -> list[grpc.GenericRpcHandler]:
    """The generic handlers of every service here, each RPC wrapped by the fake's ``wrap``."""
    found = []
    for service, table in _tables(fake).items():
        prefix = service.rsplit(".", 1)[-1]  # Projects, Folders, Organizations, IAM
        methods = {
            method: grpc.unary_unary_rpc_method_handler(
                wrap(f"{prefix}.{method}", body), request_deserializer=request.FromString,
                response_serializer=response.SerializeToString)
            for method, (request, response, body) in table.items()}
        found.append(grpc.method_handlers_generic_handler(service, methods))
    return found


class Clients:
    """The real Resource Manager and IAM clients on the fake's plain port (tests set up and check with them)."""

    def __init__(self, address: str) -> None:
        from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport
        from google.cloud.resourcemanager_v3.services.folders.transports import FoldersGrpcTransport
        from google.cloud.resourcemanager_v3.services.organizations.transports import OrganizationsGrpcTransport
        from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

        self._channel = grpc.insecure_channel(address)
        self.projects = resourcemanager_v3.ProjectsClient(transport=ProjectsGrpcTransport(channel=self._channel))
        self.folders = resourcemanager_v3.FoldersClient(transport=FoldersGrpcTransport(channel=self._channel))
        self.organizations = resourcemanager_v3.OrganizationsClient(
            transport=OrganizationsGrpcTransport(channel=self._channel))
        self.iam = iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=self._channel))

    def close(self) -> None:
        self._channel.close()

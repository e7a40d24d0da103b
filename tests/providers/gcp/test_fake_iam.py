"""The fake's Resource Manager and IAM roles, driven by the real clients over gRPC: they behave
as the API reference says, so the access scan's tests mean something."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions as gexc
from google.cloud import iam_admin_v1
from google.iam.v1 import policy_pb2

from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.iam_services import Clients
from tests.fakes.gcp.names import project_number
from tests.providers.gcp.conftest import PROJECT

PARENT = f"projects/{PROJECT}"


@pytest.fixture
def clients(gcp: FakeSecretManager) -> Iterator[Clients]:
    found = Clients(gcp.address)
    yield found
    found.close()


def get_policy(client: object, resource: str, version: int = 3) -> policy_pb2.Policy:
    return client.get_iam_policy(request={"resource": resource,  # type: ignore[attr-defined,no-any-return]
                                          "options": {"requested_policy_version": version}})


def conditional_policy(etag: bytes) -> policy_pb2.Policy:
    policy = policy_pb2.Policy(version=3, etag=etag)
    binding = policy.bindings.add(role="roles/secretmanager.secretAccessor", members=["user:a@example.com"])
    binding.condition.title = "until 2030"
    binding.condition.expression = "request.time < timestamp('2030-01-01T00:00:00Z')"
    policy.bindings.add(role="roles/viewer", members=["user:b@example.com"])
    return policy


def test_projects_answer_with_their_number_and_their_parent(gcp: FakeSecretManager, clients: Clients) -> None:
    project = clients.projects.get_project(name=PARENT)
    assert (project.name, project.project_id, project.parent) == (f"projects/{project_number(PROJECT)}", PROJECT, "")
    gcp.directory.add_organization("organizations/1")
    gcp.directory.add_folder("folders/2", "organizations/1")
    gcp.directory.place(PROJECT, "folders/2")
    assert clients.projects.get_project(name=f"projects/{project_number(PROJECT)}").parent == "folders/2"
    assert clients.folders.get_folder(name="folders/2").parent == "organizations/1"
    assert clients.organizations.get_organization(name="organizations/1").name == "organizations/1"


def test_unknown_folders_and_organizations_are_permission_denied(clients: Clients) -> None:
    with pytest.raises(gexc.PermissionDenied):
        clients.folders.get_folder(name="folders/9")
    with pytest.raises(gexc.PermissionDenied):
        get_policy(clients.organizations, "organizations/9")
    with pytest.raises(gexc.InvalidArgument):
        get_policy(clients.folders, "organizations/9")  # the Folders service serves folders only


def test_policy_versions_hide_conditions_below_version_3(clients: Clients) -> None:
    current = get_policy(clients.projects, PARENT)
    assert list(current.bindings) == [] and current.version == 1
    clients.projects.set_iam_policy(request={"resource": PARENT, "policy": conditional_policy(current.etag)})
    full = get_policy(clients.projects, PARENT)
    assert full.version == 3
    assert {(b.role, b.condition.title) for b in full.bindings} == {
        ("roles/secretmanager.secretAccessor", "until 2030"), ("roles/viewer", "")}
    for version in (0, 1):
        shown = get_policy(clients.projects, PARENT, version)
        roles = sorted(b.role for b in shown.bindings)
        assert shown.version == 1 and roles[0].startswith("roles/secretmanager.secretAccessor_withcond_")
        assert roles[1] == "roles/viewer" and not any(b.HasField("condition") for b in shown.bindings)
    with pytest.raises(gexc.InvalidArgument):
        get_policy(clients.projects, PARENT, 2)


def test_set_iam_policy_checks_the_etag_roles_members_and_version(clients: Clients) -> None:
    etag = get_policy(clients.projects, PARENT).etag
    clients.projects.set_iam_policy(request={"resource": PARENT, "policy": conditional_policy(etag)})
    with pytest.raises(gexc.Aborted):  # the etag read before the change is stale now
        clients.projects.set_iam_policy(request={"resource": PARENT, "policy": conditional_policy(etag)})
    fresh = get_policy(clients.projects, PARENT).etag
    old_format = conditional_policy(fresh)
    old_format.version = 1
    with pytest.raises(gexc.InvalidArgument):
        clients.projects.set_iam_policy(request={"resource": PARENT, "policy": old_format})
    for role, member in (("secretAccessor", "user:a@example.com"), ("roles/viewer", "mallory")):
        bad = policy_pb2.Policy(etag=fresh)
        bad.bindings.add(role=role, members=[member])
        with pytest.raises(gexc.InvalidArgument):
            clients.projects.set_iam_policy(request={"resource": PARENT, "policy": bad})


def test_folder_and_organization_policies_are_their_own(gcp: FakeSecretManager, clients: Clients) -> None:
    gcp.directory.add_organization("organizations/1")
    gcp.directory.add_folder("folders/2", "organizations/1")
    policy = policy_pb2.Policy()
    policy.bindings.add(role="roles/secretmanager.admin", members=["group:ops@example.com"])
    clients.folders.set_iam_policy(request={"resource": "folders/2", "policy": policy})
    assert [b.role for b in get_policy(clients.folders, "folders/2").bindings] == ["roles/secretmanager.admin"]
    assert list(get_policy(clients.organizations, "organizations/1").bindings) == []
    assert list(get_policy(clients.projects, PARENT).bindings) == []


def test_roles_predefined_custom_disabled_deleted_and_missing(clients: Clients) -> None:
    accessor = clients.iam.get_role(request={"name": "roles/secretmanager.secretAccessor"})
    assert "secretmanager.versions.access" in accessor.included_permissions
    assert "secretmanager.versions.access" not in clients.iam.get_role(request={"name": "roles/viewer"}).included_permissions
    with pytest.raises(gexc.NotFound):
        clients.iam.get_role(request={"name": "roles/no.such"})
    created = clients.iam.create_role(request={"parent": PARENT, "role_id": "reader", "role": {
        "title": "Reader", "included_permissions": ["secretmanager.versions.access"]}})
    assert created.name == f"{PARENT}/roles/reader" and created.etag
    with pytest.raises(gexc.AlreadyExists):
        clients.iam.create_role(request={"parent": PARENT, "role_id": "reader", "role": {"title": "again"}})
    with pytest.raises(gexc.InvalidArgument):
        clients.iam.create_role(request={"parent": PARENT, "role_id": "x", "role": {"title": "too short an id"}})
    with pytest.raises(gexc.InvalidArgument):
        clients.iam.create_role(request={"parent": PARENT, "role_id": "bad", "role": {
            "included_permissions": ["not a permission"]}})
    updated = clients.iam.update_role(request={"name": created.name, "role": {"stage": "DISABLED", "title": "ignored"},
                                               "update_mask": {"paths": ["stage"]}})
    assert updated.stage == iam_admin_v1.Role.RoleLaunchStage.DISABLED and updated.title == "Reader"
    with pytest.raises(gexc.Aborted):
        clients.iam.update_role(request={"name": created.name, "role": {"etag": created.etag, "title": "t"}})
    clients.iam.delete_role(request={"name": created.name})
    assert clients.iam.get_role(request={"name": created.name}).deleted  # kept, marked deleted
    with pytest.raises(gexc.NotFound):
        clients.iam.get_role(request={"name": f"{PARENT}/roles/never"})


def test_switches_count_and_deny_each_service_apart(gcp: FakeSecretManager, clients: Clients) -> None:
    get_policy(clients.projects, PARENT)
    clients.iam.get_role(request={"name": "roles/viewer"})
    assert gcp.calls["Projects.GetIamPolicy"] == 1 and gcp.calls["IAM.GetRole"] == 1
    assert gcp.calls["GetIamPolicy"] == 0  # Secret Manager's own, a different RPC
    gcp.deny("Projects.GetIamPolicy")
    with pytest.raises(gexc.PermissionDenied) as denied:
        get_policy(clients.projects, PARENT)
    assert "resourcemanager.projects.getIamPolicy" in denied.value.message
    clients.iam.get_role(request={"name": "roles/viewer"})  # only the denied method is refused
    clients.iam.create_role(request={"parent": PARENT, "role_id": "reader", "role": {"title": "Reader"}})
    gcp.reset()  # no denial, no counts, no roles or policies
    assert gcp.calls == {} and list(get_policy(clients.projects, PARENT).bindings) == []
    with pytest.raises(gexc.NotFound):
        clients.iam.get_role(request={"name": f"{PARENT}/roles/reader"})

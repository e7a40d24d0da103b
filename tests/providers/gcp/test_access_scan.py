"""Who can read each secret on GCP: the secrets' own policies, the project's, the folders' and
the organization's, through the real Secret Manager, Resource Manager and IAM clients on the
fake. What an operator would notice: the right principal, scope, role and condition; a
source that could not be read named as such (never "nobody"); a removed grant gone; and a
scan whose cost does not grow with the number of secrets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from google.cloud import secretmanager
from google.iam.v1 import policy_pb2

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import open_session
from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.base import Operation, ProviderContext, ProviderError, ReadQuery
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.access import NOT_READ, OPTED_OUT
from cloudsync.providers.gcp.rules import GcpTarget
from tests.fakes.gcp import PERMISSIONS, FakeSecretManager
from tests.fakes.gcp.iam_services import Clients
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

SM = secretmanager.SecretManagerServiceClient
PARENT = f"projects/{PROJECT}"
API = f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"
INTRUDER = "user:mallory@example.com"
ORG, TEAM, APPS = "organizations/100", "folders/200", "folders/300"  # organization > team > apps > project
READER_ROLE = f"{PARENT}/roles/secretReader"
METADATA_ROLE = f"{PARENT}/roles/secretMetadata"
ORG_READER_ROLE = f"{ORG}/roles/orgSecretReader"


@pytest.fixture
def iam(gcp: FakeSecretManager) -> Iterator[Clients]:
    """The real Resource Manager and IAM clients on the fake, and a small organization around the project."""
    clients = Clients(gcp.address)
    gcp.directory.add_organization(ORG)
    gcp.directory.add_folder(TEAM, ORG)
    gcp.directory.add_folder(APPS, TEAM)
    gcp.directory.place(PROJECT, APPS)
    for parent, role_id, permissions in (
            (PARENT, "secretReader", ["secretmanager.versions.access", "secretmanager.versions.get"]),
            (PARENT, "secretMetadata", ["secretmanager.secrets.get", "secretmanager.versions.get"]),
            (ORG, "orgSecretReader", ["secretmanager.versions.access"])):
        clients.iam.create_role(request={"parent": parent, "role_id": role_id,
                                         "role": {"title": role_id, "included_permissions": permissions}})
    yield clients
    clients.close()


def make_provider(gcp: FakeSecretManager, tmp_path: Path, **fields: object) -> GcpProvider:
    fields.setdefault("endpoint", gcp.address)
    config = GcpTarget(provider="gcp", project=PROJECT, **fields)  # type: ignore[arg-type]
    return GcpProvider("gcp-prod", config, ProviderContext(stack="payments", root=tmp_path))


def create_secrets(sm: SM, count: int, *, reader: str | None = API) -> list[str]:
    """``count`` secrets of this stack, each readable by ``reader`` through its own policy."""
    names = [f"payments__s{i:03d}" for i in range(count)]
    for name in names:
        sm.create_secret(request={"parent": PARENT, "secret_id": name, "secret": {
            "replication": {"automatic": {}}, "labels": {"managed-by": "cloudsync", "cloudsync-stack": "payments"}}})
        if reader:
            bind(sm, f"{PARENT}/secrets/{name}", "roles/secretmanager.secretAccessor", reader)
    return names


def bind(client: object, resource: str, role: str, member: str, *, condition: tuple[str, str] | None = None) -> None:
    """Add one binding to ``resource``'s IAM policy, with the client that serves it (read-modify-write)."""
    current = client.get_iam_policy(request={"resource": resource,  # type: ignore[attr-defined]
                                             "options": {"requested_policy_version": 3}})
    policy = policy_pb2.Policy()
    policy.CopyFrom(current)
    binding = policy.bindings.add(role=role, members=[member])
    if condition is not None:
        binding.condition.title, binding.condition.expression = condition
        policy.version = 3
    client.set_iam_policy(request={"resource": resource, "policy": policy})  # type: ignore[attr-defined]


def unbind(client: object, resource: str, role: str) -> None:
    current = client.get_iam_policy(request={"resource": resource,  # type: ignore[attr-defined]
                                             "options": {"requested_policy_version": 3}})
    policy = policy_pb2.Policy(version=current.version, etag=current.etag)
    policy.bindings.extend(b for b in current.bindings if b.role != role)
    client.set_iam_policy(request={"resource": resource, "policy": policy})  # type: ignore[attr-defined]


def scan(provider: GcpProvider, names: list[str]) -> tuple[AccessScan, Counter[str]]:
    """Read the target as plan does, then scan it; the calls the scan alone made."""
    query = ReadQuery(stack="payments", declared=frozenset(names), access=frozenset())
    secrets = provider.read(query)
    before = Counter(provider.api_calls)
    result = provider.scan_access(query, secrets)
    return result, Counter(provider.api_calls) - before


def broad(result: AccessScan, name: str) -> set[EffectiveReader]:
    return {r for r in result.readers_of(name) if r.via is not Via.SECRET}


# -- the matrix: each kind of role, bound on the project ----------------------------------

ROLES = [
    ("roles/secretmanager.secretAccessor", True),
    ("roles/secretmanager.admin", True),
    ("roles/owner", True),  # decided by IAM's answer for the role (see test_basic_roles_are_decided_by_iam)
    ("roles/editor", False),
    (READER_ROLE, True),
    (METADATA_ROLE, False),
    (ORG_READER_ROLE, True),
    ("roles/viewer", False),
    ("roles/secretmanager.viewer", False),
    ("roles/secretmanager.secretVersionManager", False),
]


@pytest.mark.parametrize(("role", "reads"), ROLES)
def test_a_project_grant_of_each_role_kind(role: str, reads: bool, gcp: FakeSecretManager, sm: SM, iam: Clients,
                                           tmp_path: Path) -> None:
    names = create_secrets(sm, 3)
    bind(iam.projects, PARENT, role, INTRUDER)
    result, _ = scan(make_provider(gcp, tmp_path), names)
    assert result.complete, result.reasons
    for name in names:
        expected = {EffectiveReader(INTRUDER, Via.PROJECT, PARENT, role)} if reads else set()
        assert broad(result, name) == expected
        # The secret's own reader is still there, through the secret.
        assert EffectiveReader(API, Via.SECRET, f"{PARENT}/secrets/{name}",
                               "roles/secretmanager.secretAccessor") in result.readers_of(name)


def test_a_conditional_binding_is_listed_as_conditional(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                        tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", INTRUDER,
         condition=("break-glass until 2030", "request.time < timestamp('2030-01-01T00:00:00Z')"))
    result, _ = scan(make_provider(gcp, tmp_path), [name])
    assert broad(result, name) == {EffectiveReader(
        INTRUDER, Via.PROJECT, PARENT, "roles/secretmanager.secretAccessor (condition: break-glass until 2030)",
        conditional=True)}


def test_members_are_reported_as_the_policy_names_them(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                       tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1, reader=None)
    members = ["allUsers", "allAuthenticatedUsers", "domain:example.com", "group:ops@example.com"]
    for member in [*members, f"deleted:serviceAccount:old@{PROJECT}.iam.gserviceaccount.com?uid=1"]:
        bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", member)
    result, _ = scan(make_provider(gcp, tmp_path), [name])
    # A deleted principal can no longer authenticate: it reads nothing and is left out.
    assert {r.principal for r in result.readers_of(name)} == set(members)


def test_grants_on_the_secret_itself_beyond_the_accessor_binding(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                                 tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    secret = f"{PARENT}/secrets/{name}"
    bind(sm, secret, "roles/secretmanager.admin", INTRUDER)
    bind(sm, secret, READER_ROLE, "group:auditors@example.com")
    bind(sm, secret, "roles/secretmanager.viewer", "group:viewers@example.com")
    result, _ = scan(make_provider(gcp, tmp_path), [name])
    assert set(result.readers_of(name)) == {
        EffectiveReader(API, Via.SECRET, secret, "roles/secretmanager.secretAccessor"),
        EffectiveReader(INTRUDER, Via.SECRET, secret, "roles/secretmanager.admin"),
        EffectiveReader("group:auditors@example.com", Via.SECRET, secret, READER_ROLE)}


def test_basic_roles_are_decided_by_iam_not_assumed(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                    tmp_path: Path) -> None:
    """Whether roles/editor carries secretmanager.versions.access is asked of IAM: change the answer,
    and the scan follows it."""
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, "roles/editor", INTRUDER)
    assert broad(scan(make_provider(gcp, tmp_path), [name])[0], name) == set()
    gcp.directory.predefined["roles/editor"].append("secretmanager.versions.access")
    assert broad(scan(make_provider(gcp, tmp_path), [name])[0], name) == {
        EffectiveReader(INTRUDER, Via.PROJECT, PARENT, "roles/editor")}


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_a_disabled_or_deleted_custom_role_grants_nothing(change: str, gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                          tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, READER_ROLE, INTRUDER)
    assert broad(scan(make_provider(gcp, tmp_path), [name])[0], name)
    if change == "disable":
        iam.iam.update_role(request={"name": READER_ROLE, "role": {"stage": "DISABLED"},
                                     "update_mask": {"paths": ["stage"]}})
    else:
        iam.iam.delete_role(request={"name": READER_ROLE})
    result, _ = scan(make_provider(gcp, tmp_path), [name])
    assert result.complete and broad(result, name) == set()


def test_removing_the_grant_clears_the_reader(gcp: FakeSecretManager, sm: SM, iam: Clients, tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, READER_ROLE, INTRUDER)
    provider = make_provider(gcp, tmp_path)
    assert {r.principal for r in broad(scan(provider, [name])[0], name)} == {INTRUDER}
    unbind(iam.projects, PARENT, READER_ROLE)
    result, _ = scan(provider, [name])
    assert result.complete and broad(result, name) == set()


# -- ancestors ------------------------------------------------------------------------------

def test_folder_and_organization_grants_with_ancestors_found(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                             tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.folders, TEAM, "roles/secretmanager.secretAccessor", "group:team@example.com")
    bind(iam.organizations, ORG, ORG_READER_ROLE, "domain:example.com")
    bind(iam.organizations, ORG, "roles/viewer", "group:everyone@example.com")
    bind(iam.folders, APPS, "roles/secretmanager.admin", "user:lead@example.com",
         condition=("office hours", "request.time.getHours('UTC') < 18"))
    provider = make_provider(gcp, tmp_path, access_scan={"ancestors": True})
    result, calls = scan(provider, [name])
    assert result.complete, result.reasons
    assert broad(result, name) == {
        EffectiveReader("group:team@example.com", Via.FOLDER, TEAM, "roles/secretmanager.secretAccessor"),
        EffectiveReader("domain:example.com", Via.ORGANIZATION, ORG, ORG_READER_ROLE),
        EffectiveReader("user:lead@example.com", Via.FOLDER, APPS,
                        "roles/secretmanager.admin (condition: office hours)", conditional=True)}
    # The project's parents are found once: the project, then each folder up to the organization.
    assert calls == Counter({"Projects.GetIamPolicy": 1, "Projects.GetProject": 1, "Folders.GetFolder": 2,
                             "Folders.GetIamPolicy": 2, "Organizations.GetIamPolicy": 1, "IAM.GetRole": 1})


def test_named_ancestors_are_read_without_looking_them_up(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                          tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.organizations, ORG, "roles/secretmanager.secretAccessor", "group:sec@example.com")
    provider = make_provider(gcp, tmp_path, access_scan={"ancestors": [ORG]})
    result, calls = scan(provider, [name])
    assert broad(result, name) == {
        EffectiveReader("group:sec@example.com", Via.ORGANIZATION, ORG, "roles/secretmanager.secretAccessor")}
    assert calls == Counter({"Projects.GetIamPolicy": 1, "Organizations.GetIamPolicy": 1})


def test_ancestors_are_not_read_unless_asked(gcp: FakeSecretManager, sm: SM, iam: Clients, tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.organizations, ORG, "roles/secretmanager.secretAccessor", "group:sec@example.com")
    result, calls = scan(make_provider(gcp, tmp_path), [name])
    assert result.complete and broad(result, name) == set()
    assert calls == Counter({"Projects.GetIamPolicy": 1})


# -- sources that cannot be read ---------------------------------------------------------------

def test_a_denied_project_policy_makes_every_secret_unknown_not_unread(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                                       tmp_path: Path) -> None:
    names = create_secrets(sm, 2)
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", INTRUDER)
    gcp.deny("Projects.GetIamPolicy")
    result, _ = scan(make_provider(gcp, tmp_path), names)
    assert not result.complete
    for name in names:
        (reason,) = result.reasons_for(name)
        assert f"the IAM policy of {PARENT} could not be read" in reason
        assert "resourcemanager.projects.getIamPolicy" in reason
        # What could be read is still there: a lower bound, never "nobody".
        assert [r.principal for r in result.readers_of(name)] == [API]


def test_a_denied_role_lookup_names_the_role_and_the_permission(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                                tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, READER_ROLE, INTRUDER)
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", "group:ops@example.com")
    gcp.deny("IAM.GetRole")
    result, _ = scan(make_provider(gcp, tmp_path), [name])
    (reason,) = result.reasons
    assert READER_ROLE in reason and "iam.roles.get" in reason and PARENT in reason
    assert {r.principal for r in broad(result, name)} == {"group:ops@example.com"}


def test_a_denied_custom_role_bound_on_one_secret_marks_only_that_secret(gcp: FakeSecretManager, sm: SM,
                                                                         iam: Clients, tmp_path: Path) -> None:
    first, second = create_secrets(sm, 2)
    bind(sm, f"{PARENT}/secrets/{first}", READER_ROLE, INTRUDER)
    gcp.deny("IAM.GetRole")
    result, _ = scan(make_provider(gcp, tmp_path), [first, second])
    assert not result.reasons
    assert not result.complete_for(first) and "iam.roles.get" in result.reasons_for(first)[0]
    assert result.complete_for(second)


@pytest.mark.parametrize(("method", "permission"), [
    ("Projects.GetProject", "resourcemanager.projects.get"),
    ("Folders.GetFolder", "resourcemanager.folders.get"),
    ("Folders.GetIamPolicy", "resourcemanager.folders.getIamPolicy"),
    ("Organizations.GetIamPolicy", "resourcemanager.organizations.getIamPolicy"),
])
def test_a_denied_ancestor_source_is_named(method: str, permission: str, gcp: FakeSecretManager, sm: SM,
                                           iam: Clients, tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", INTRUDER)
    gcp.deny(method)
    result, _ = scan(make_provider(gcp, tmp_path, access_scan={"ancestors": True}), [name])
    assert not result.complete
    assert any(permission in reason for reason in result.reasons), result.reasons
    assert EffectiveReader(INTRUDER, Via.PROJECT, PARENT, "roles/secretmanager.secretAccessor") in broad(result, name)


def test_access_scan_false_reads_no_iam_and_says_so(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                    tmp_path: Path) -> None:
    names = create_secrets(sm, 2)
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", INTRUDER)
    result, calls = scan(make_provider(gcp, tmp_path, access_scan=False), names)
    assert calls == Counter()
    for name in names:
        assert result.reasons_for(name) == (OPTED_OUT,)
        assert [r.principal for r in result.readers_of(name)] == [API]


def test_a_secret_whose_policy_was_not_read_gets_the_broad_readers_and_a_reason(
        gcp: FakeSecretManager, sm: SM, iam: Clients, tmp_path: Path) -> None:
    sm.create_secret(request={"parent": PARENT, "secret_id": "someone-elses", "secret": {
        "replication": {"automatic": {}}}})
    bind(iam.projects, PARENT, "roles/secretmanager.secretAccessor", INTRUDER)
    result, _ = scan(make_provider(gcp, tmp_path), [])
    assert result.reasons_for("someone-elses") == (NOT_READ,)
    assert {r.principal for r in result.readers_of("someone-elses")} == {INTRUDER}


# -- cost ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 40])
def test_the_scan_costs_one_policy_and_one_call_per_role_asked_whatever_the_number_of_secrets(
        count: int, gcp: FakeSecretManager, sm: SM, iam: Clients, tmp_path: Path) -> None:
    names = create_secrets(sm, count)
    for role in (READER_ROLE, METADATA_ROLE, ORG_READER_ROLE, "roles/owner", "roles/secretmanager.admin",
                 "roles/viewer"):
        bind(iam.projects, PARENT, role, INTRUDER)
    for name in names[:3]:  # a custom role also bound on secrets: still looked up once
        bind(sm, f"{PARENT}/secrets/{name}", READER_ROLE, "group:auditors@example.com")
    gcp.calls.clear()
    result, calls = scan(make_provider(gcp, tmp_path), names)
    assert result.complete
    # 1 project policy + 3 custom roles + roles/owner (a basic role, asked of IAM); no call per secret.
    assert calls == Counter({"Projects.GetIamPolicy": 1, "IAM.GetRole": 4})
    assert gcp.calls["Projects.GetIamPolicy"] == 1 and gcp.calls["IAM.GetRole"] == 4


# -- endpoints -----------------------------------------------------------------------------------

def test_a_per_service_endpoint_sends_those_calls_elsewhere(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                            tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    other = FakeSecretManager().start()  # another Resource Manager (and IAM) than the Secret Manager's
    try:
        clients = Clients(other.address)
        bind(clients.projects, PARENT, "roles/secretmanager.secretAccessor", "group:elsewhere@example.com")
        clients.close()
        other.calls.clear()
        provider = make_provider(gcp, tmp_path, endpoints={"resourcemanager": other.address})
        result, _ = scan(provider, [name])
        assert {r.principal for r in broad(result, name)} == {"group:elsewhere@example.com"}
        assert gcp.calls["Projects.GetIamPolicy"] == 0 and other.calls["Projects.GetIamPolicy"] == 1
        provider.close()
    finally:
        other.stop()


@pytest.mark.parametrize("service", ["resourcemanager", "iam"])
def test_plain_text_to_a_non_loopback_service_endpoint_is_refused(service: str, gcp: FakeSecretManager,
                                                                  tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="unencrypted gRPC to a non-loopback host"):
        make_provider(gcp, tmp_path, endpoints={service: "grpc://10.1.2.3:443"})


# -- permissions -----------------------------------------------------------------------------------

def printed_roles(config: GcpTarget) -> dict[str, set[str]]:
    """Role title word -> permissions, from what `cloudsync permissions` prints for the target."""
    text = GcpProvider.render_permissions(config, "payments", "gcp-prod")
    roles = {}
    for document in yaml.safe_load_all(text):
        if isinstance(document, dict) and "includedPermissions" in document:
            roles[document["title"].split()[1]] = set(document["includedPermissions"])
    return roles


def test_the_printed_roles_hold_exactly_what_the_scan_calls(gcp: FakeSecretManager, sm: SM, iam: Clients,
                                                            tmp_path: Path) -> None:
    (name,) = create_secrets(sm, 1)
    bind(iam.projects, PARENT, READER_ROLE, INTRUDER)
    provider = make_provider(gcp, tmp_path, access_scan={"ancestors": True})
    _, calls = scan(provider, [name])
    used = {PERMISSIONS[method] for method in calls}  # the fake's own table of what each RPC checks
    roles = printed_roles(provider.config)
    without = printed_roles(GcpTarget(provider="gcp", project=PROJECT, access_scan=False))
    in_project = {"resourcemanager.projects.getIamPolicy", "iam.roles.get"}
    for operation in ("plan-metadata", "plan", "apply"):  # each runs the scan
        assert roles[operation] - without[operation] == in_project
    assert in_project | roles["access-ancestors"] == used
    assert "access-ancestors" not in without and "access-ancestors" not in printed_roles(
        GcpTarget(provider="gcp", project=PROJECT))
    assert set(GcpProvider.permissions()[Operation.PLAN_METADATA]) == roles["plan-metadata"]  # `cloudsync access` too


# -- through a stack, as the engine opens the target --------------------------------------------------

STACK_SECRETS = """\
- name: payments/db-password
  targets: [gcp-prod]
  value: {generate: {length: 32}}
  readers: [api]
- name: payments/session-key
  targets: [gcp-prod]
  value: {generate: {length: 32}}
  readers: [worker]
"""


def scan_stack(root: Path) -> AccessScan:
    stack = load_stack(root)
    names = frozenset({"payments__db-password", "payments__session-key"})
    query = ReadQuery(stack=stack.name, declared=names, access=frozenset())
    with open_session(stack) as session:
        provider = session.provider("gcp-prod")
        return provider.scan_access(query, provider.read(query))


def test_a_stack_declaring_one_reader_per_secret_sees_a_broad_grant_come_and_go(
        gcp_stack: Callable[..., Path], iam: Clients) -> None:
    root = gcp_stack(STACK_SECRETS, target_extra=", access_scan: {ancestors: true}")
    engine.apply(root)
    before = scan_stack(root)
    assert before.complete
    assert {n: {(r.principal, r.via) for r in before.readers_of(n)} for n in before.readers} == {
        "payments__db-password": {(API, Via.SECRET)},
        "payments__session-key": {(f"serviceAccount:worker@{PROJECT}.iam.gserviceaccount.com", Via.SECRET)}}
    bind(iam.folders, TEAM, ORG_READER_ROLE, INTRUDER)  # out of band, two levels up
    during = scan_stack(root)
    for name in during.readers:
        assert EffectiveReader(INTRUDER, Via.FOLDER, TEAM, ORG_READER_ROLE) in during.readers_of(name)
    unbind(iam.folders, TEAM, ORG_READER_ROLE)
    after = scan_stack(root)
    assert after.complete and all(r.via is Via.SECRET for name in after.readers for r in after.readers_of(name))


@pytest.mark.parametrize(("extra", "message"), [
    (", access_scan: {ancestors: [projects/acme-prod]}", "access_scan"),
    (", access_scan: {ancestor: true}", "ancestor"),
    (", endpoints: {secretmanager: '127.0.0.1:1'}", "secretmanager"),
])
def test_a_bad_access_scan_or_endpoints_setting_is_a_diagnostic_with_its_place(
        extra: str, message: str, gcp_stack: Callable[..., Path]) -> None:
    root = gcp_stack(STACK_SECRETS, target_extra=extra)
    with pytest.raises(CloudsyncError) as raised:
        load_stack(root)
    rendered = "\n".join(d.render() for d in raised.value.diagnostics)
    assert message in rendered and "cloudsync.yaml:" in rendered

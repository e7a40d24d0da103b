"""The fake Secret Manager, driven by the real client over gRPC: it behaves as the API
reference says, so the adapter's tests mean something."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import secretmanager

from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.names import project_number
from tests.fakes.gcp.rules import crc32c
from tests.providers.gcp.conftest import PROJECT

Client = secretmanager.SecretManagerServiceClient
State = secretmanager.SecretVersion.State
PARENT = f"projects/{PROJECT}"
AUTO = {"automatic": {}}


def create(sm: Client, secret_id: str, **fields: object) -> secretmanager.Secret:
    return sm.create_secret(request={"parent": PARENT, "secret_id": secret_id,
                                     "secret": {"replication": AUTO, **fields}})


def test_names_come_back_with_the_project_number(sm: Client) -> None:
    secret = create(sm, "db", labels={"env": "prod"})
    assert secret.name == f"projects/{project_number(PROJECT)}/secrets/db"
    assert sm.get_secret(name=f"{PARENT}/secrets/db").name == secret.name  # ids and numbers both work
    assert secret.etag.startswith('"') and secret.etag.endswith('"')


def test_create_refuses_duplicates_bad_ids_bad_labels_and_missing_replication(sm: Client) -> None:
    create(sm, "db")
    with pytest.raises(gexc.AlreadyExists):
        create(sm, "db")
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "bad/id")
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "x", labels={"Env": "prod"})  # keys are lowercase
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "x", labels={"env": "Prod!"})
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "x", labels={f"k{i}": "v" for i in range(65)})
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "x", annotations={"-bad": "v"})
    with pytest.raises(gexc.InvalidArgument):
        sm.create_secret(request={"parent": PARENT, "secret_id": "x", "secret": {}})
    with pytest.raises(gexc.InvalidArgument):
        sm.create_secret(request={"parent": f"{PARENT}/locations/us-east1", "secret_id": "x",
                                  "secret": {"replication": AUTO}})
    with pytest.raises(gexc.NotFound):
        sm.get_secret(name=f"{PARENT}/secrets/missing")


def test_list_is_newest_first_paged_with_opaque_tokens_and_filters_labels(sm: Client) -> None:
    for i in range(5):
        create(sm, f"s{i}", labels={"team": "a" if i % 2 else "b"})
    page = sm.list_secrets(request={"parent": PARENT, "page_size": 2})
    assert [s.name.rsplit("/", 1)[1] for s in page] == ["s4", "s3", "s2", "s1", "s0"]  # the pager follows tokens
    first = sm.list_secrets(request={"parent": PARENT, "page_size": 2}).next_page_token
    assert first
    with pytest.raises(gexc.InvalidArgument):
        list(sm.list_secrets(request={"parent": PARENT, "page_size": 2, "page_token": "bogus"}))
    with pytest.raises(gexc.InvalidArgument):  # a token is bound to its query
        list(sm.list_secrets(request={"parent": PARENT, "page_size": 2, "page_token": first, "filter": "labels.team=a"}))
    filtered = sm.list_secrets(request={"parent": PARENT, "filter": "labels.team=a"})
    assert [s.name.rsplit("/", 1)[1] for s in filtered] == ["s3", "s1"]
    assert [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": PARENT, "filter": "NOT name:s"})] == []
    regional = sm.list_secrets(request={"parent": f"{PARENT}/locations/us-east1"})
    assert list(regional) == []


def test_update_needs_a_mask_checks_the_etag_and_keeps_replication_immutable(sm: Client) -> None:
    secret = create(sm, "db", labels={"a": "1"}, annotations={"note": "x"})
    updated = sm.update_secret(request={"secret": {"name": secret.name, "labels": {"b": "2"}, "etag": secret.etag},
                                        "update_mask": {"paths": ["labels"]}})
    assert dict(updated.labels) == {"b": "2"} and dict(updated.annotations) == {"note": "x"}
    assert updated.etag != secret.etag
    with pytest.raises(gexc.FailedPrecondition):
        sm.update_secret(request={"secret": {"name": secret.name, "labels": {}, "etag": secret.etag},
                                  "update_mask": {"paths": ["labels"]}})
    with pytest.raises(gexc.InvalidArgument):
        sm.update_secret(request={"secret": {"name": secret.name}, "update_mask": {"paths": []}})
    with pytest.raises(gexc.InvalidArgument):
        sm.update_secret(request={"secret": {"name": secret.name, "replication": {"user_managed": {
            "replicas": [{"location": "us-east1"}]}}}, "update_mask": {"paths": ["replication"]}})
    with pytest.raises(gexc.FailedPrecondition):
        sm.delete_secret(request={"name": secret.name, "etag": secret.etag})
    sm.delete_secret(request={"name": secret.name, "etag": updated.etag})
    with pytest.raises(gexc.NotFound):
        sm.get_secret(name=secret.name)


def test_expiry_and_ttl_are_kept_cleared_and_an_expired_secret_is_gone(
        sm: Client, gcp: FakeSecretManager, monkeypatch: pytest.MonkeyPatch) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    secret = create(sm, "db", expire_time=soon)
    assert abs(secret.expire_time - soon) < timedelta(seconds=1)
    with pytest.raises(gexc.InvalidArgument):
        create(sm, "past", expire_time=datetime.now(UTC) - timedelta(minutes=1))
    cleared = sm.update_secret(request={"secret": {"name": secret.name}, "update_mask": {"paths": ["expire_time"]}})
    assert "expire_time" not in cleared
    ttl = create(sm, "ttl", ttl=timedelta(hours=2))
    assert ttl.expire_time > datetime.now(UTC) + timedelta(minutes=119)
    later = datetime.now(UTC) + timedelta(hours=3)
    monkeypatch.setattr(gcp.store, "_clock", later.timestamp)
    assert [s.name.rsplit("/", 1)[1] for s in sm.list_secrets(request={"parent": PARENT})] == ["db"]


def test_versions_latest_numbers_aliases_states_and_checksums(sm: Client) -> None:
    secret = create(sm, "db")
    with pytest.raises(gexc.NotFound):
        sm.access_secret_version(name=f"{secret.name}/versions/latest")
    v1 = sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"one",
                                                                          "data_crc32c": crc32c(b"one")}})
    assert v1.name.endswith("/versions/1") and v1.state == State.ENABLED and v1.client_specified_payload_checksum
    with pytest.raises(gexc.InvalidArgument):
        sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"two", "data_crc32c": 1}})
    with pytest.raises(gexc.InvalidArgument):
        sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"x" * (64 * 1024 + 1)}})
    v2 = sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"two"}})
    latest = sm.access_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.name == v2.name and latest.payload.data == b"two"
    assert latest.payload.data_crc32c == crc32c(b"two")

    aliased = sm.update_secret(request={"secret": {"name": secret.name, "version_aliases": {"stable": 1}},
                                        "update_mask": {"paths": ["version_aliases"]}})
    assert dict(aliased.version_aliases) == {"stable": 1}
    assert sm.access_secret_version(name=f"{secret.name}/versions/stable").payload.data == b"one"
    with pytest.raises(gexc.InvalidArgument):
        sm.update_secret(request={"secret": {"name": secret.name, "version_aliases": {"latest": 1}},
                                  "update_mask": {"paths": ["version_aliases"]}})

    with pytest.raises(gexc.FailedPrecondition):
        sm.disable_secret_version(request={"name": v2.name, "etag": v1.etag})
    disabled = sm.disable_secret_version(request={"name": v2.name, "etag": v2.etag})
    assert disabled.state == State.DISABLED and disabled.etag != v2.etag
    # `latest` is the newest version whatever its state: reading it now fails.
    assert sm.get_secret_version(name=f"{secret.name}/versions/latest").state == State.DISABLED
    with pytest.raises(gexc.FailedPrecondition, match="DISABLED state"):
        sm.access_secret_version(name=f"{secret.name}/versions/latest")
    enabled = sm.list_secret_versions(request={"parent": secret.name, "filter": "state:ENABLED"})
    assert [v.name for v in enabled] == [v1.name]
    destroyed = sm.destroy_secret_version(request={"name": v1.name})
    assert destroyed.state == State.DESTROYED and "destroy_time" in destroyed
    with pytest.raises(gexc.FailedPrecondition):
        sm.enable_secret_version(request={"name": v1.name})
    assert "stable" not in sm.get_secret(name=secret.name).version_aliases


def test_iam_policies_have_their_own_etag_and_validate_members(sm: Client) -> None:
    secret = create(sm, "db")
    empty = sm.get_iam_policy(request={"resource": secret.name})
    assert list(empty.bindings) == [] and empty.etag == b"\x00\x20\x01"
    policy = sm.set_iam_policy(request={"resource": secret.name, "policy": {
        "bindings": [{"role": "roles/secretmanager.secretAccessor", "members": ["user:a@example.com"]}],
        "etag": empty.etag}})
    assert policy.etag != empty.etag
    with pytest.raises(gexc.Aborted):
        sm.set_iam_policy(request={"resource": secret.name, "policy": {"bindings": [], "etag": empty.etag}})
    with pytest.raises(gexc.InvalidArgument):
        sm.set_iam_policy(request={"resource": secret.name, "policy": {
            "bindings": [{"role": "roles/secretmanager.secretAccessor", "members": ["alice"]}]}})
    with pytest.raises(gexc.InvalidArgument):  # conditions need policy version 3
        sm.set_iam_policy(request={"resource": secret.name, "policy": {"bindings": [{
            "role": "roles/secretmanager.viewer", "members": ["user:a@example.com"],
            "condition": {"expression": "true", "title": "t"}}]}})
    allowed = sm.test_iam_permissions(request={"resource": secret.name,
                                               "permissions": ["secretmanager.versions.access", "storage.x"]})
    assert list(allowed.permissions) == ["secretmanager.versions.access"]
    with pytest.raises(gexc.NotFound):
        sm.get_iam_policy(request={"resource": f"{PARENT}/secrets/missing"})


def test_injected_faults_deny_switches_and_call_counters(sm: Client, gcp: FakeSecretManager) -> None:
    create(sm, "x")
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 2, methods=["GetSecret"], retry_delay=1.5)
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 1, methods=["ListSecrets"])
    for _ in range(2):
        with pytest.raises(gexc.ResourceExhausted) as throttled:
            sm.get_secret(name=f"{PARENT}/secrets/x", retry=None)
    retry_info = [d for d in throttled.value.details if hasattr(d, "retry_delay")]
    assert retry_info and retry_info[0].retry_delay.ToTimedelta() == timedelta(seconds=1.5)
    assert sm.get_secret(name=f"{PARENT}/secrets/x", retry=None).name.endswith("/x")
    with pytest.raises(gexc.ServiceUnavailable):
        list(sm.list_secrets(request={"parent": PARENT}, retry=None))
    assert gcp.pending_faults() == 0
    gcp.deny("AccessSecretVersion")
    with pytest.raises(gexc.PermissionDenied, match=r"secretmanager\.versions\.access"):
        sm.access_secret_version(name=f"{PARENT}/secrets/x/versions/latest", retry=None)
    assert gcp.calls["GetSecret"] == 3 and gcp.calls["ListSecrets"] == 1 and gcp.calls["CreateSecret"] == 1

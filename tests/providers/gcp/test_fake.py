"""The fake Secret Manager, driven by the real client over gRPC: it behaves as the API
reference says, so the adapter's tests mean something."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth import crypt, jwt
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.cloud import secretmanager
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as OAuthCredentials

from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.names import project_number
from tests.fakes.gcp.rules import crc32c
from tests.fakes.gcp.server import SERVICE
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


# -- the TLS port: bearer tokens, as the real service demands ----------------------------


def _tls_client(gcp: FakeSecretManager, credentials: object) -> Client:
    return Client(credentials=credentials, client_options=ClientOptions(api_endpoint=gcp.tls_address))


def test_the_tls_port_accepts_the_service_accounts_jwt_and_refuses_anything_else(
        gcp: FakeSecretManager, gcp_tls: dict[str, str]) -> None:
    assert gcp.credentials is not None
    key_file = gcp_tls["GOOGLE_APPLICATION_CREDENTIALS"]
    scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    signed = service_account.Credentials.from_service_account_file(key_file, scopes=scopes)
    client = _tls_client(gcp, signed)  # the client signs its own JWT (always_use_jwt_access)
    create(client, "db")
    assert [s.name.rsplit("/", 1)[1] for s in client.list_secrets(request={"parent": PARENT})] == ["db"]
    assert gcp.credentials.self_signed >= 2 and gcp.credentials.exchanges == 0

    anonymous = _tls_client(gcp, AnonymousCredentials())
    with pytest.raises(gexc.Unauthenticated, match="invalid authentication credentials"):
        anonymous.get_secret(name=f"{PARENT}/secrets/db", retry=None)

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    forged = jwt.encode(crypt.RSASigner.from_string(pem, gcp.credentials.key_id),
                        {"iss": gcp.credentials.email, "sub": gcp.credentials.email,
                         "iat": int(time.time()), "exp": int(time.time()) + 600})
    stub = grpc.secure_channel(gcp.tls_address, grpc.ssl_channel_credentials())
    with pytest.raises(grpc.RpcError) as refused:
        stub.unary_unary(f"/{SERVICE}/GetSecret", request_serializer=lambda r: r.SerializeToString(),
                         response_deserializer=secretmanager.Secret.pb().FromString)(
            secretmanager.GetSecretRequest.pb()(name=f"{PARENT}/secrets/db"),
            metadata=[("authorization", "Bearer " + forged.decode())])
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    stub.close()

    gcp.credentials.revoke()  # a disabled key: even a fresh JWT of it is refused
    with pytest.raises(gexc.Unauthenticated):
        client.get_secret(name=f"{PARENT}/secrets/db", retry=None)
    plain = gcp.client()  # the loopback port stays an emulator's: no credentials at all
    assert plain.get_secret(name=f"{PARENT}/secrets/db").name.endswith("/db")
    plain.transport.close()
    client.transport.close()
    anonymous.transport.close()


def test_the_token_endpoint_trades_a_signed_assertion_for_an_access_token(
        gcp: FakeSecretManager, gcp_tls: dict[str, str]) -> None:
    assert gcp.credentials is not None
    credentials = service_account.Credentials.from_service_account_file(
        gcp_tls["GOOGLE_APPLICATION_CREDENTIALS"], scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with requests.Session() as session:
        credentials.refresh(GoogleAuthRequest(session))  # POSTs the JWT assertion to the key file's token_uri
    assert credentials.token and credentials.token.startswith("ya29.") and gcp.credentials.exchanges == 1
    # Secret Manager's client would sign its own JWT with the key; hand it the access token alone.
    client = _tls_client(gcp, OAuthCredentials(token=credentials.token))
    create(client, "db")
    assert gcp.credentials.self_signed == 0  # the access token did, not a JWT
    gcp.credentials.revoke()
    with pytest.raises(gexc.Unauthenticated):
        client.get_secret(name=f"{PARENT}/secrets/db", retry=None)
    client.transport.close()


# -- pages, policy versions, normalised policies, lost responses, grants --------------------


def test_the_service_caps_pages_below_what_the_client_asks_for(sm: Client, gcp: FakeSecretManager) -> None:
    for i in range(5):
        create(sm, f"s{i}")
    gcp.max_page_size = 2
    first = sm.list_secrets(request={"parent": PARENT, "page_size": 25_000})
    assert len(first.secrets) == 2 and first.next_page_token
    assert [s.name.rsplit("/", 1)[1] for s in first] == ["s4", "s3", "s2", "s1", "s0"]
    assert gcp.calls["ListSecrets"] == 3


def test_get_iam_policy_honours_the_requested_policy_version(sm: Client) -> None:
    secret = create(sm, "db")
    conditional = {"role": "roles/secretmanager.secretAccessor", "members": ["user:a@example.com"],
                   "condition": {"expression": "request.time < timestamp('2030-01-01T00:00:00Z')", "title": "t"}}
    sm.set_iam_policy(request={"resource": secret.name, "policy": {"version": 3, "bindings": [conditional]}})
    with pytest.raises(gexc.InvalidArgument, match="version 3"):  # unset = version 0
        sm.get_iam_policy(request={"resource": secret.name})
    with pytest.raises(gexc.InvalidArgument):
        sm.get_iam_policy(request={"resource": secret.name, "options": {"requested_policy_version": 2}})
    policy = sm.get_iam_policy(request={"resource": secret.name, "options": {"requested_policy_version": 3}})
    assert policy.version == 3 and policy.bindings[0].condition.title == "t"

    plain = create(sm, "plain")
    sm.set_iam_policy(request={"resource": plain.name, "policy": {"version": 3, "bindings": [
        {"role": "roles/secretmanager.secretAccessor", "members": ["user:a@example.com"]}]}})
    read = sm.get_iam_policy(request={"resource": plain.name, "options": {"requested_policy_version": 3}})
    assert read.version == 1  # the lowest version that expresses it


def test_policies_come_back_normalised_not_in_the_order_they_were_set(sm: Client) -> None:
    secret = create(sm, "db")
    sm.set_iam_policy(request={"resource": secret.name, "policy": {"bindings": [
        {"role": "roles/secretmanager.viewer", "members": ["user:b@example.com", "user:a@example.com"]},
        {"role": "roles/secretmanager.secretAccessor", "members": ["serviceAccount:z@p.iam.gserviceaccount.com",
                                                                   "group:g@example.com"]},
        {"role": "roles/secretmanager.viewer", "members": ["user:a@example.com", "user:d@example.com"]},
        {"role": "roles/secretmanager.secretVersionAdder", "members": []}]}})
    policy = sm.get_iam_policy(request={"resource": secret.name})
    assert [(b.role, list(b.members)) for b in policy.bindings] == [
        ("roles/secretmanager.secretAccessor", ["group:g@example.com", "serviceAccount:z@p.iam.gserviceaccount.com"]),
        ("roles/secretmanager.viewer", ["user:a@example.com", "user:b@example.com", "user:d@example.com"]),
    ]


def test_a_lost_response_means_the_call_was_performed(sm: Client, gcp: FakeSecretManager) -> None:
    secret = create(sm, "db")
    gcp.lose("AddSecretVersion")
    with pytest.raises(gexc.ServiceUnavailable):
        sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"v1"}}, retry=None)
    assert [v.name.rsplit("/", 1)[1] for v in sm.list_secret_versions(request={"parent": secret.name})] == ["1"]
    assert gcp.pending_faults() == 0


def test_grant_only_denies_every_permission_not_granted_on_the_project_or_the_secret(
        sm: Client, gcp: FakeSecretManager) -> None:
    for name in ("key", "other"):
        secret = create(sm, name)
        sm.add_secret_version(request={"parent": secret.name, "payload": {"data": b"v"}})
    gcp.grant_only(["secretmanager.secrets.list"], on_secrets={"key": ["secretmanager.versions.access"]})
    assert len(list(sm.list_secrets(request={"parent": PARENT}))) == 2
    assert sm.access_secret_version(name=f"{PARENT}/secrets/key/versions/latest").payload.data == b"v"
    with pytest.raises(gexc.PermissionDenied, match=r"'secretmanager\.versions\.access' denied"):
        sm.access_secret_version(name=f"{PARENT}/secrets/other/versions/latest", retry=None)
    with pytest.raises(gexc.PermissionDenied, match=r"'secretmanager\.secrets\.get' denied"):
        sm.get_secret(name=f"{PARENT}/secrets/key", retry=None)

"""The fake itself, driven by the real ``azure-keyvault-secrets``, ``azure-identity`` and
``azure-mgmt-authorization`` clients over HTTPS: if these pass, the provider's tests talk to
something that behaves like Key Vault and ARM as the SDKs see them."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from tests.fakes.azure import KEYVAULT_API_VERSION, AzureFake
from tests.providers.azure.conftest import OutOfBand
from tests.providers.azure.stacks import API, WORKER


def test_challenge_then_managed_identity_token(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("first", "v")
    # One unauthenticated request elicits the challenge (the SDK caches it per vault for
    # the process), a token comes from the managed-identity endpoint, the set succeeds.
    assert azure.calls["kv.set"] == 1
    assert azure.calls["mi.token"] == 1
    assert azure.calls["kv.challenge"] <= 1


def test_the_challenge_names_the_tenant_and_the_vault_resource(azure: AzureFake) -> None:
    answer = azure.handle("GET", f"/secrets?api-version={KEYVAULT_API_VERSION}", {}, b"")
    assert answer is not None and answer.status == 401
    assert answer.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{azure.tenant_id}", '
        'resource="https://vault.azure.net"')


def test_verified_challenge_resource_refuses_a_loopback_vault(azure: AzureFake) -> None:
    credential = DefaultAzureCredential()
    client = SecretClient(azure.url, credential)  # verify_challenge_resource defaults to True
    try:
        with pytest.raises(ValueError, match="challenge resource"):
            client.set_secret("x", "v")
    finally:
        client.close()
        credential.close()


def test_a_wrong_identity_header_gets_no_token(azure: AzureFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    credential = DefaultAzureCredential()
    try:
        with pytest.raises(ClientAuthenticationError):
            credential.get_token("https://vault.azure.net/.default")
    finally:
        credential.close()


def test_versions_carry_their_own_tags(azure: AzureFake, oob: OutOfBand) -> None:
    first = oob.secrets.set_secret("s", "one", tags={"v": "1"}, content_type="text/plain")
    second = oob.secrets.set_secret("s", "two", tags={"v": "2"})
    assert oob.secrets.get_secret("s").value == "two"
    assert oob.secrets.get_secret("s", first.properties.version).value == "one"
    oob.secrets.update_secret_properties("s", first.properties.version, tags={"v": "1b"})
    listed = {p.version: p.tags for p in oob.secrets.list_properties_of_secret_versions("s")}
    assert listed == {first.properties.version: {"v": "1b"}, second.properties.version: {"v": "2"}}
    # The list shows the current version's tags under the secret's base id (no version).
    (item,) = list(oob.secrets.list_properties_of_secrets())
    assert (item.tags, item.version) == ({"v": "2"}, None)
    # An update without a version changes the current (latest) one and replaces its tags.
    oob.secrets.update_secret_properties("s", tags={"w": "x"})
    assert oob.secrets.get_secret("s").properties.tags == {"w": "x"}


def test_names_are_case_insensitive(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("Mixed-Case", "one")
    oob.secrets.set_secret("mixed-case", "two")
    (item,) = list(oob.secrets.list_properties_of_secrets())
    assert item.name == "Mixed-Case"
    assert oob.secrets.get_secret("MIXED-CASE").value == "two"


def test_list_pages_by_25_with_absolute_next_links(azure: AzureFake, oob: OutOfBand) -> None:
    for i in range(30):
        oob.secrets.set_secret(f"s{i:02d}", "v")
    azure.calls.clear()
    names = [p.name for p in oob.secrets.list_properties_of_secrets()]
    assert names == [f"s{i:02d}" for i in range(30)]
    assert azure.calls["kv.list"] == 2
    pages = list(oob.secrets.list_properties_of_secrets(max_page_size=7).by_page())
    assert [len(list(p)) for p in pages] == [7, 7, 7, 7, 2]
    assert azure.vault.list_secrets()[1] == 30
    page = azure.handle("GET", f"/secrets?api-version={KEYVAULT_API_VERSION}&maxresults=25",
                        {"authorization": "Bearer " + azure.issue_token("https://vault.azure.net")[0]}, b"")
    assert page is not None and page.body["nextLink"].startswith(azure.url + "/secrets?")
    with pytest.raises(HttpResponseError) as refused:
        list(oob.secrets.list_properties_of_secrets(max_page_size=26))
    assert refused.value.status_code == 400


def test_soft_delete_conflict_recover_and_purge(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("gone", "v", tags={"t": "1"})
    oob.secrets.begin_delete_secret("gone", _polling_interval=0.01).wait()
    with pytest.raises(ResourceNotFoundError):
        oob.secrets.get_secret("gone")
    (deleted,) = list(oob.secrets.list_deleted_secrets())
    assert deleted.name == "gone" and deleted.properties.tags == {"t": "1"} and deleted.recovery_id
    with pytest.raises(ResourceExistsError) as conflict:
        oob.secrets.set_secret("gone", "again")
    assert conflict.value.error is not None
    assert conflict.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}
    oob.secrets.begin_recover_deleted_secret("gone", _polling_interval=0.01).wait()
    assert oob.secrets.get_secret("gone").value == "v"
    oob.secrets.begin_delete_secret("gone", _polling_interval=0.01).wait()
    oob.secrets.purge_deleted_secret("gone")
    assert list(oob.secrets.list_deleted_secrets()) == []
    oob.secrets.set_secret("gone", "fresh")  # the name is free again


def test_deletion_completes_only_after_a_poll(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("slow", "v")
    oob.secrets.begin_delete_secret("slow")  # not waited for
    with pytest.raises(ResourceExistsError):  # purging too soon: 409, as Azure answers
        oob.secrets.purge_deleted_secret("slow")
    with pytest.raises(ResourceNotFoundError):
        oob.secrets.get_deleted_secret("slow")  # the first poll: not there yet
    assert oob.secrets.get_deleted_secret("slow").name == "slow"


def test_purge_protection_refuses_purge(azure: AzureFake, oob: OutOfBand) -> None:
    azure.vault.purge_protection = True
    oob.secrets.set_secret("kept", "v")
    oob.secrets.begin_delete_secret("kept", _polling_interval=0.01).wait()
    with pytest.raises(HttpResponseError) as refused:
        oob.secrets.purge_deleted_secret("kept")
    assert refused.value.status_code == 403
    (deleted,) = list(oob.secrets.list_deleted_secrets())
    assert deleted.properties.recovery_level == "Recoverable"


def test_tag_limit(azure: AzureFake, oob: OutOfBand) -> None:
    with pytest.raises(HttpResponseError) as refused:
        oob.secrets.set_secret("many", "v", tags={f"t{i}": "x" for i in range(16)})
    assert refused.value.status_code == 400


def test_injected_429_honours_retry_after(azure: AzureFake, oob: OutOfBand) -> None:
    azure.inject(429, 1, retry_after="1", operations=["kv.set"])
    started = time.monotonic()
    oob.secrets.set_secret("throttled", "v")
    assert time.monotonic() - started >= 1.0
    assert azure.calls["fault.429"] == 1 and azure.calls["kv.set"] == 2


def test_injected_503_and_dropped_connections_are_retried(azure: AzureFake, oob: OutOfBand) -> None:
    azure.inject(503, 1, operations=["kv.list"])
    azure.inject(0, 1, operations=["kv.list"])
    assert list(oob.secrets.list_properties_of_secrets()) == []
    assert azure.calls["fault.503"] == 1 and azure.calls["fault.drop"] == 1


def test_dropped_connection_surfaces_when_retries_are_exhausted(azure: AzureFake, oob: OutOfBand) -> None:
    azure.inject(0, 10, operations=["kv.list"])
    with pytest.raises(ServiceResponseError):
        list(oob.secrets.list_properties_of_secrets(retry_total=1))


def test_denied_action_is_403_by_rbac(azure: AzureFake, oob: OutOfBand) -> None:
    azure.deny("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    oob.secrets.set_secret("s", "v")
    with pytest.raises(HttpResponseError) as refused:
        oob.secrets.get_secret("s")
    assert refused.value.status_code == 403
    assert refused.value.error is not None and refused.value.error.innererror == {"code": "ForbiddenByRbac"}


def _assignment(fake: AzureFake, principal: str) -> RoleAssignmentCreateParameters:
    return RoleAssignmentCreateParameters(role_definition_id=fake.role_definition_id, principal_id=principal)


def test_role_assignment_scopes_and_filters(azure: AzureFake, oob: OutOfBand) -> None:
    ra = oob.authorization.role_assignments
    ra.create(azure.secret_scope("a"), "11111111-0000-4000-8000-000000000001", _assignment(azure, API))
    ra.create(azure.vault_scope, "11111111-0000-4000-8000-000000000002", _assignment(azure, WORKER))
    ra.create(f"/subscriptions/{azure.subscription_id}", "11111111-0000-4000-8000-000000000003",
              _assignment(azure, WORKER))
    ra.create(f"/subscriptions/{azure.subscription_id}/resourceGroups/other", "11111111-0000-4000-8000-000000000004",
              _assignment(azure, WORKER))
    unfiltered = {a.name for a in ra.list_for_scope(azure.vault_scope)}
    assert unfiltered == {"11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002",
                          "11111111-0000-4000-8000-000000000003"}  # at, above and below; not a sibling
    at_scope = {a.name for a in ra.list_for_scope(azure.vault_scope, filter="atScope()")}
    assert at_scope == {"11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003"}
    of_api = {a.name for a in ra.list_for_scope(azure.vault_scope, filter=f"principalId eq '{API}'")}
    assert of_api == {"11111111-0000-4000-8000-000000000001"}


def test_role_assignment_create_is_idempotent_by_name(azure: AzureFake, oob: OutOfBand) -> None:
    ra = oob.authorization.role_assignments
    scope = azure.secret_scope("a")
    first = ra.create(scope, "22222222-0000-4000-8000-000000000001", _assignment(azure, API))
    again = ra.create(scope, "22222222-0000-4000-8000-000000000001", _assignment(azure, API))
    assert first.id == again.id and first.principal_id == API
    with pytest.raises(ResourceExistsError) as exists:
        ra.create(scope, "22222222-0000-4000-8000-000000000002", _assignment(azure, API))
    assert exists.value.error is not None and exists.value.error.code == "RoleAssignmentExists"
    assert ra.delete_by_id(first.id or "") is not None
    assert ra.delete_by_id(first.id or "") is None  # 204: nothing left to delete
    with pytest.raises(HttpResponseError):
        ra.create(scope, "not-a-guid", _assignment(azure, API))


def test_role_assignment_list_pages(azure: AzureFake, oob: OutOfBand) -> None:
    azure.arm_page_size = 2
    for i in range(5):
        oob.authorization.role_assignments.create(
            azure.secret_scope(f"s{i}"), f"33333333-0000-4000-8000-00000000000{i}", _assignment(azure, API))
    azure.calls.clear()
    assert len(list(oob.authorization.role_assignments.list_for_scope(azure.vault_scope))) == 5
    assert azure.calls["arm.role_assignments.list"] == 3


def test_arm_refuses_a_vault_token(azure: AzureFake) -> None:
    token = azure.issue_token("https://vault.azure.net")[0]
    answer = azure.handle("GET", f"{azure.vault_scope}/providers/Microsoft.Authorization/roleAssignments"
                          "?api-version=2022-04-01", {"authorization": f"Bearer {token}"}, b"")
    assert answer is not None and answer.status == 401


def test_client_secret_credential_against_the_fake_authority(azure: AzureFake) -> None:
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(azure.tenant_id, azure.client_id, azure.client_secret,
                                        authority=azure.url, disable_instance_discovery=True)
    client = AuthorizationManagementClient(credential, azure.subscription_id, base_url=azure.url,
                                           credential_scopes=[f"{azure.url}/.default"])
    try:
        assert list(client.role_assignments.list_for_scope(azure.vault_scope)) == []
        assert azure.calls["aad.token"] == 1
    finally:
        client.close()
        credential.close()


# -- pages, certificates' secrets, field limits, lost answers, granted actions -------------


def test_lists_follow_next_links_through_short_and_empty_pages(azure: AzureFake, oob: OutOfBand) -> None:
    for i in range(5):
        oob.secrets.set_secret(f"s{i}", "v")
    azure.list_page_size, azure.empty_pages = 2, 1
    azure.calls.clear()
    assert sorted(p.name or "" for p in oob.secrets.list_properties_of_secrets(max_page_size=25)) == [
        f"s{i}" for i in range(5)]
    assert azure.calls["kv.list"] == 6  # an empty page with a nextLink before each of the 3 pages of items


def test_a_certificates_secret_is_listed_as_managed_and_refuses_writes(azure: AzureFake, oob: OutOfBand) -> None:
    azure.vault.add_certificate("tls-cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (listed,) = list(oob.secrets.list_properties_of_secrets())
    assert listed.name == "tls-cert" and listed.managed is True and listed.content_type == "application/x-pem-file"
    secret = oob.secrets.get_secret("tls-cert")
    assert secret.properties.key_id and "/keys/tls-cert/" in secret.properties.key_id
    for attempt in (lambda: oob.secrets.set_secret("tls-cert", "mine"),
                    lambda: oob.secrets.update_secret_properties("tls-cert", tags={"a": "b"}),
                    lambda: oob.secrets.begin_delete_secret("tls-cert")):
        with pytest.raises(HttpResponseError) as refused:
            attempt()
        assert refused.value.status_code == 403 and "managed by the certificate" in str(refused.value.message)
    assert [v.value for v in azure.vault.snapshot("tls-cert").versions] == [secret.value]  # type: ignore[union-attr]


def test_a_content_type_is_at_most_255_characters(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("fits", "v", content_type="d" * 255)
    with pytest.raises(HttpResponseError) as too_long:
        oob.secrets.set_secret("too-long", "v", content_type="d" * 256)
    assert too_long.value.status_code == 400 and "255" in str(too_long.value.message)
    with pytest.raises(HttpResponseError):
        oob.secrets.update_secret_properties("fits", content_type="d" * 256)
    assert oob.secrets.get_secret("fits").properties.content_type == "d" * 255
    assert azure.vault.snapshot("too-long") is None


def test_a_lost_answer_means_the_write_was_made(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("first", "warm-up")  # the challenge and the token, answered
    azure.lose("kv.set")
    with pytest.raises(ServiceResponseError):
        oob.secrets.set_secret("db", "v1", retry_total=0)
    secret = azure.vault.snapshot("db")
    assert secret is not None and [v.value for v in secret.versions] == ["v1"]


def test_allow_only_refuses_every_action_not_granted(azure: AzureFake, oob: OutOfBand) -> None:
    oob.secrets.set_secret("db", "v")
    azure.allow_only("Microsoft.KeyVault/vaults/secrets/readMetadata/action")
    assert [p.name for p in oob.secrets.list_properties_of_secrets()] == ["db"]
    with pytest.raises(HttpResponseError) as refused:
        oob.secrets.get_secret("db")
    assert refused.value.status_code == 403
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in str(refused.value.message)
    with pytest.raises(HttpResponseError) as arm:
        list(oob.authorization.role_assignments.list_for_scope(azure.vault_scope))
    assert "Microsoft.Authorization/roleAssignments/read" in str(arm.value.message)

"""Each provider's rules: principal ids, descriptions it can store, and what the core makes of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.config.models import Principal
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import desired_state, open_session
from cloudsync.policy.document import principal_ids
from cloudsync.providers.azure.rules import CONTENT_TYPE_MAX
from cloudsync.providers.registry import kinds, rules_for

ROLE = "arn:aws:iam::123456789012:role/api"
MEMBER = "serviceAccount:api@acme-prod.iam.gserviceaccount.com"
OBJECT_ID = "00000000-0000-0000-0000-000000000001"


def test_a_principal_has_the_id_it_declares_in_each_cloud() -> None:
    api = Principal.model_validate({"aws": ROLE, "gcp": MEMBER, "azure": OBJECT_ID})
    assert {kind: rules_for(kind).principal_id(api, "api") for kind in kinds()} == {
        "aws": ROLE, "gcp": MEMBER, "azure": OBJECT_ID, "local": "api"}
    assert principal_ids(api, "api") == {"aws": ROLE, "gcp": MEMBER, "azure": OBJECT_ID, "local": "api"}


def test_a_principal_without_an_id_in_a_cloud_has_none_there_but_always_one_locally() -> None:
    web = Principal.model_validate({"aws": ROLE, "local": "web-local"})
    assert [rules_for(kind).principal_id(web, "web") for kind in kinds()] == [ROLE, None, None, "web-local"]


def test_each_cloud_checks_its_own_principal_ids() -> None:
    with pytest.raises(ValueError, match="azure"):
        Principal.model_validate({"azure": "0000000A-0000-0000-0000-000000000001"})  # ids are compared lowercase


@pytest.mark.parametrize("kind", ["aws", "gcp", "local"])
def test_a_principal_id_longer_than_any_cloud_takes_is_refused(kind: str) -> None:
    Principal.model_validate({kind: "p" * 2048})
    with pytest.raises(ValueError, match="at most 2048 characters"):
        Principal.model_validate({kind: "p" * 2049})


@pytest.mark.parametrize(("kind", "longest"), [("aws", 2048), ("gcp", 2048), ("local", 2048),
                                               ("azure", CONTENT_TYPE_MAX)])
def test_each_cloud_says_which_descriptions_it_can_store(kind: str, longest: int) -> None:
    rules = rules_for(kind)
    assert rules.check_description("d" * longest) is None
    if longest < 2048:
        assert rules.check_description("d" * (longest + 1)) == (
            f"the description has {longest + 1} characters, but Key Vault keeps at most {longest} in a secret's "
            "contentType, where cloudsync stores it")


STACK = """\
version: 1
stack: payments
targets:
  local: {provider: local}
  aws-prod: {provider: aws, region: us-east-1}
  azure-prod: {provider: azure, vault_url: "https://acme.vault.azure.net"}
  azure-dr: {provider: azure, vault_url: "https://acme-dr.vault.azure.net"}
principals:
  api: {aws: "ROLE", azure: OBJECT_ID}
secrets:
""".replace("ROLE", ROLE).replace("OBJECT_ID", OBJECT_ID)


def problems(folder: Path) -> list[str]:
    with pytest.raises(CloudsyncError) as info:
        load_stack(folder)
    return [d.render() for d in info.value.diagnostics]


def test_a_description_azure_cannot_store_is_refused_at_its_line(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(STACK + f"""\
  - name: payments/db-password
    targets: [aws-prod, azure-prod, azure-dr]
    description: {"d" * 256}
  - name: payments/fits
    targets: [azure-prod]
    description: {"d" * 255}
  - name: payments/aws-only
    targets: [aws-prod, local]
    description: {"d" * 2048}
""")
    assert problems(folder) == [
        f"{folder}/cloudsync.yaml:13:18: error: the description has 256 characters, but Key Vault keeps at most 255 "
        "in a secret's contentType, where cloudsync stores it (targets 'azure-prod', 'azure-dr') (hint: shorten the "
        "description; a longer note can stay in the file as a YAML comment)"]


def test_a_reader_needs_an_id_in_each_cloud_its_secret_lives_in(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(STACK.replace("  api: {", "  web: {gcp: 'serviceAccount:w@acme-prod.iam.gserviceaccount.com'}\n"
                                       "  api: {") + """\
  - {name: payments/key, targets: [local, aws-prod], readers: [web]}
""")
    assert problems(folder) == [
        f"{folder}/cloudsync.yaml:12:64: error: principal 'web' has no aws id, but this secret lives in aws target "
        "'aws-prod' (hint: add 'aws:' to principals.web)"]


def test_readers_are_planned_as_each_clouds_principal_ids(write_stack: Callable[..., Path]) -> None:
    stack = load_stack(write_stack(STACK + """\
  - {name: payments/key, targets: [local, aws-prod, azure-prod], readers: [api]}
"""))
    with open_session(stack) as session:
        desired = desired_state(session, ["local", "aws-prod", "azure-prod"], None, metadata_only=True)
    assert {(d.target, d.remote_name, tuple(d.readers or ())) for d in desired} == {
        ("local", "payments/key", ("api",)),
        ("aws-prod", "payments/key", (ROLE,)),
        ("azure-prod", "payments--key", (OBJECT_ID,)),
    }

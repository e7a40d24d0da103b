"""A secret's life in AWS through cloudsync's engine: create, update, delete, restore, replicas."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import assert_no_canary, files_containing
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import (
    DB_PASSWORD,
    READER_A,
    READER_B,
    Engine,
    assert_applied,
    changes,
    stack_yaml,
    tags_of,
)

ADDRESS = "aws-prod:payments/db-password"
NAME = "payments/db-password"


def _stages(sm: Any, name: str) -> dict[str, list[str]]:
    stages: dict[str, list[str]] = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    return stages


def _value(sm: Any, name: str) -> str:
    return str(sm.get_secret_value(SecretId=name)["SecretString"])


def _readers(sm: Any, name: str) -> set[str]:
    text = sm.get_resource_policy(SecretId=name).get("ResourcePolicy")
    if not text:
        return set()
    principals: set[str] = set()
    for statement in json.loads(text)["Statement"]:
        found = statement["Principal"]["AWS"]
        principals.update([found] if isinstance(found, str) else found)
    return principals


@pytest.fixture
def created(engine: Engine, aws: MotoServer, canary: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    run, report = engine.apply()
    assert changes(run) == [(ADDRESS, "create", ("value", "access"))]
    assert_applied(report)
    return engine


def test_create_writes_value_tags_label_and_policy(created: Engine, sm: Any, canary: str) -> None:
    assert _value(sm, NAME) == canary
    tags = tags_of(sm, NAME)
    assert tags["managed-by"] == "cloudsync" and tags["cloudsync-stack"] == "payments"
    assert tags["env"] == "prod" and tags["cloudsync-fp"] and tags["cloudsync-kid"]
    assert "cloudsync-version" not in tags  # the version lives in the staging label, not a tag
    (version,) = [v for v, stages in _stages(sm, NAME).items() if "AWSCURRENT" in stages]
    assert "cloudsync" in _stages(sm, NAME)[version]
    assert _readers(sm, NAME) == {READER_A}
    assert sm.describe_secret(SecretId=NAME)["Description"] == "Postgres password"


def test_fingerprint_key_is_a_managed_secret_of_the_target(created: Engine, sm: Any) -> None:
    tags = tags_of(sm, "cloudsync-fingerprint-key-payments")
    assert tags["managed-by"] == "cloudsync" and tags["cloudsync-stack"] == "payments"
    assert "cloudsync-fingerprint-key-payments" not in [c.remote_name for c in created.plan().plan.changes]


def test_second_plan_is_empty_and_cheap(created: Engine) -> None:
    run, calls = created.calls()
    assert changes(run) == []
    assert run.plan.summary()["unchanged"] == 1
    # one list page, the fingerprint key, the readers of the one owned secret and one page of IAM
    # authorization details for the access scan: no DescribeSecret
    assert calls == {"ListSecrets": 1, "GetSecretValue": 1, "GetResourcePolicy": 1,
                     "GetAccountAuthorizationDetails": 1}


def test_metadata_only_plan_reads_no_value(created: Engine) -> None:
    run, calls = created.calls(metadata_only=True)
    assert changes(run) == []
    assert "GetSecretValue" not in calls


def test_update_value_moves_current_and_label(created: Engine, sm: Any, canary: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = _stages(sm, NAME)
    monkeypatch.setenv("DB_PASSWORD", canary + "-2")
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("value",))]
    assert_applied(report)
    stages = _stages(sm, NAME)
    (new,) = set(stages) - set(first)
    assert set(stages[new]) == {"AWSCURRENT", "cloudsync"}
    assert _value(sm, NAME) == canary + "-2"
    assert changes(created.plan()) == []
    assert_no_canary(canary, *[str(c) for c in run.plan.changes], json.dumps([r.error for r in report.results]))


def test_update_tags_adds_changes_and_removes(created: Engine, aws: MotoServer, sm: Any) -> None:
    created.write(stack_yaml(aws.url, DB_PASSWORD.replace("labels: {env: prod}", "labels: {tier: gold}")))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("labels",))]
    assert_applied(report)
    tags = tags_of(sm, NAME)
    assert tags["tier"] == "gold" and "env" not in tags and tags["managed-by"] == "cloudsync"
    assert changes(created.plan()) == []


def test_update_readers_rewrites_policy(created: Engine, aws: MotoServer, sm: Any) -> None:
    created.write(stack_yaml(aws.url, DB_PASSWORD.replace("[payments-api]", "[payments-api, billing-worker]")))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("access",))]
    assert_applied(report)
    assert _readers(sm, NAME) == {READER_A, READER_B}
    created.write(stack_yaml(aws.url, DB_PASSWORD.replace("readers: [payments-api]", "readers: []")))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("access",))]
    assert_applied(report)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=NAME)  # DeleteResourcePolicy
    assert changes(created.plan()) == []


def test_expiry_is_kept_as_a_tag(created: Engine, aws: MotoServer, sm: Any) -> None:
    created.write(stack_yaml(aws.url, DB_PASSWORD + "  expires: 90d\n"))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "update", ("expiry",))]
    assert_applied(report)
    assert tags_of(sm, NAME)["cloudsync-expires"].isdigit()
    assert changes(created.plan()) == []


def test_delete_schedules_with_recovery_window_then_restore(created: Engine, aws: MotoServer, sm: Any,
                                                            canary: str) -> None:
    created.write(stack_yaml(aws.url, "[]"))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "delete", ())]
    assert_applied(report)
    listed = sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert [s.get("DeletedDate") is not None for s in listed if s["Name"] == NAME] == [True]
    assert changes(created.plan()) == []  # a scheduled deletion of an undeclared secret is done

    created.write(stack_yaml(aws.url, DB_PASSWORD))
    run, report = created.apply()
    assert changes(run) == [(ADDRESS, "restore", ())]
    assert_applied(report)
    assert sm.describe_secret(SecretId=NAME).get("DeletedDate") is None
    assert _value(sm, NAME) == canary
    assert _readers(sm, NAME) == {READER_A}
    assert changes(created.plan()) == []


def test_purge_on_delete_forces_deletion(engine: Engine, aws: MotoServer, sm: Any, canary: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD + "  purge_on_delete: true\n"))
    assert_applied(engine.apply()[1])
    assert tags_of(sm, NAME)["cloudsync-purge"] == "true"
    engine.write(stack_yaml(aws.url, "[]"))
    run, report = engine.apply()
    assert changes(run) == [(ADDRESS, "delete", ())]
    assert_applied(report)
    assert NAME not in [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]


def test_replica_regions_added_at_create_and_removed_before_delete(engine: Engine, aws: MotoServer, sm: Any,
                                                                   canary: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    replicated = stack_yaml(aws.url, DB_PASSWORD, target_extra=", replica_regions: [us-west-2]")
    engine.write(replicated)
    assert_applied(engine.apply()[1])
    status = sm.describe_secret(SecretId=NAME)["ReplicationStatus"]
    assert [r["Region"] for r in status] == ["us-west-2"]
    assert tags_of(sm, NAME)["cloudsync-replicas"] == "us-west-2"
    assert changes(engine.plan()) == []

    # A change that touches the secret brings the replicas to the target's list.
    engine.write(stack_yaml(aws.url, DB_PASSWORD.replace("env: prod", "env: prd")))
    assert_applied(engine.apply()[1])
    assert not sm.describe_secret(SecretId=NAME).get("ReplicationStatus")
    assert "cloudsync-replicas" not in tags_of(sm, NAME)

    engine.write(replicated)
    assert_applied(engine.apply()[1])
    engine.write(stack_yaml(aws.url, "[]", target_extra=", replica_regions: [us-west-2]"))
    run, report = engine.apply()  # AWS refuses to delete a primary with replicas: they go first
    assert changes(run) == [(ADDRESS, "delete", ())]
    assert_applied(report)


def test_value_never_leaks_into_files(created: Engine, canary: str) -> None:
    assert files_containing(created.root.parent, canary) == []

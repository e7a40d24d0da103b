"""The provider contract, part 1: a secret's life in every target kind, through the engine.

Create with every attribute, update each attribute alone, delete, restore, adopt: the
plan names exactly what changes, apply makes it so, the next plan is empty, and the
cloud's own client sees the result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.providers.contract.clouds import Cloud
from tests.providers.contract.drive import STACK, Change, Driver

NAME = "payments/db-password"
SECRET = """\
- name: payments/db-password
  description: Postgres password
  targets: [T]
  labels: {env: prod}
  value: {env: DB_PASSWORD}
  readers: [api]
  expires: 90d
"""


@pytest.fixture
def value(canary: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return canary


def _near(moment: datetime | None, days: int) -> bool:
    return moment is not None and abs(moment - (datetime.now(UTC) + timedelta(days=days))) < timedelta(hours=1)


def test_create_writes_every_attribute_and_converges(cloud: Cloud, target: Driver, value: str) -> None:
    target.declare(SECRET)
    planned = target.plan()
    assert [(c.secret, c.action) for c in planned.changes] == [(NAME, "create")]
    assert "value" in planned.changes[0].reasons
    target.converge()
    remote = target.remote(planned.remote_name(NAME))
    assert remote is not None and remote.owner == STACK and not remote.deleted
    assert dict(remote.labels) == {"env": "prod"} and remote.description == "Postgres password"
    assert remote.readers == {cloud.principals()["api"]}
    assert _near(remote.expires_at, 90)
    assert cloud.native_value(planned.remote_name(NAME)) == value


EDITS = {
    "value": (None, lambda remote, cloud: None),
    "labels": (("labels: {env: prod}", "labels: {env: live, team: payments}"),
               lambda remote, cloud: dict(remote.labels) == {"env": "live", "team": "payments"}),
    "description": (("description: Postgres password", "description: Postgres password (rotated monthly)"),
                    lambda remote, cloud: remote.description == "Postgres password (rotated monthly)"),
    "access": (("readers: [api]", "readers: [api, worker]"),
               lambda remote, cloud: remote.readers == set(cloud.principals().values())),
    "expiry": (("expires: 90d", "expires: 30d"), lambda remote, cloud: _near(remote.expires_at, 30)),
}


@pytest.mark.parametrize("attribute", list(EDITS))
def test_updating_one_attribute_changes_exactly_it(cloud: Cloud, target: Driver, value: str, attribute: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target.declare(SECRET)
    remote_name = target.converge().remote_name(NAME)
    edit, check = EDITS[attribute]
    if edit is None:
        monkeypatch.setenv("DB_PASSWORD", value + "-rotated")
        target.declare(SECRET)
    else:
        target.declare(SECRET.replace(*edit))
    assert target.plan().changes == [Change(NAME, "update", (attribute,))]
    target.converge()
    remote = target.remote(remote_name)
    assert remote is not None and remote.owner == STACK
    if attribute == "value":
        assert cloud.native_value(remote_name) == value + "-rotated"
    else:
        assert check(remote, cloud), remote
        assert cloud.native_value(remote_name) == value  # metadata edits leave the value alone


def test_delete_then_declare_again(cloud: Cloud, target: Driver, value: str) -> None:
    target.declare(SECRET)
    remote_name = target.converge().remote_name(NAME)
    target.declare("")
    (delete,) = target.plan().changes
    # With its declaration gone, a delete is known by the remote secret it removes (on GCP and
    # Azure the translated name): the plan says so rather than guess the logical name back.
    assert delete.action == "delete" and delete.secret in (NAME, remote_name)
    target.converge()
    assert cloud.native_value(remote_name) is None
    gone = target.remote(remote_name)

    target.declare(SECRET)
    back = target.plan().changes
    if cloud.soft_delete:  # the secret waits, recoverable: it is restored, not created anew
        assert gone is not None and gone.deleted
        assert [(c.secret, c.action) for c in back] == [(NAME, "restore")]
    else:  # GCP: Secret Manager has no soft delete; the name is free and the secret is created again
        assert gone is None
        assert [(c.secret, c.action) for c in back] == [(NAME, "create")]
    target.converge()
    assert cloud.native_value(remote_name) == value
    remote = target.remote(remote_name)
    assert remote is not None and remote.owner == STACK and remote.readers == {cloud.principals()["api"]}


LEGACY = """\
- name: payments/legacy-token
  targets: [T]
  labels: {team: legacy}
"""


def test_adopting_an_unowned_secret_takes_ownership_and_keeps_its_value(cloud: Cloud, target: Driver,
                                                                        canary: str) -> None:
    target.declare(LEGACY)
    remote_name = target.plan().remote_name("payments/legacy-token")
    cloud.put_unowned(remote_name, canary, {"team": "legacy"})
    target.declare("")
    assert target.import_names() == ["payments/legacy-token"]  # offered, under its logical name

    target.declare(LEGACY)
    refused = target.plan()  # declared but not owned: a conflict, nothing planned
    assert refused.changes == [] and any("not managed by cloudsync" in e for e in refused.errors)

    target.declare(LEGACY.replace("  targets: [T]\n", "  targets: [T]\n  adopt: true\n"))
    adopting = target.plan().changes
    assert [(c.secret, c.action) for c in adopting] == [("payments/legacy-token", "update")]
    assert "ownership" in adopting[0].reasons
    target.converge()
    remote = target.remote(remote_name)
    assert remote is not None and remote.owner == STACK and dict(remote.labels) == {"team": "legacy"}
    assert cloud.native_value(remote_name) == canary  # adopted as it is: no value source, no rewrite
    target.declare("")
    assert target.import_names() == []  # the stack's own now: nothing left to import

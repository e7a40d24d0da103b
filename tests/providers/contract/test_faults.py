"""The provider contract, part 3: what crosses a network fails in classes cloudsync tells apart.

Throttling and outages are transient (retried until they pass); a denied permission is
not (one call, a message naming the permission); an answer lost after the cloud acted is
retried without harm; a listing is read to its last page however short the pages. The
local store is an embedded file, with no network in between: it takes no part here (the
table in test_values_and_locks.py pins that difference), and its own tests cover it.
"""

from __future__ import annotations

import pytest

from cloudsync.diagnostics import CloudsyncError
from tests.providers.contract.clouds import Cloud
from tests.providers.contract.drive import Change, Driver

NETWORKED = ["aws", "gcp", "azure"]
networked = pytest.mark.parametrize("cloud", NETWORKED, indirect=True)

NAME = "payments/db-password"
SECRET = """\
- name: payments/db-password
  targets: [T]
  value: {env: DB_PASSWORD}
  readers: [api]
"""


@pytest.fixture
def applied(cloud: Cloud, target: Driver, canary: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The secret applied with the canary; its value then changed at its source. Returns its remote name."""
    monkeypatch.setenv("DB_PASSWORD", canary)
    target.declare(SECRET)
    remote_name = target.converge().remote_name(NAME)
    monkeypatch.setenv("DB_PASSWORD", canary + "-rotated")
    return remote_name


@networked
def test_throttling_is_retried_until_it_passes(cloud: Cloud, target: Driver, applied: str, canary: str) -> None:
    cloud.throttle_value_writes(2)
    outcome = target.apply()
    assert outcome.ok, outcome.errors
    assert cloud.pending_faults() == 0  # both refusals were met, then the write went through
    assert cloud.native_value(applied) == canary + "-rotated"
    assert target.plan().changes == []


@networked
def test_a_denied_permission_fails_once_naming_the_permission(cloud: Cloud, target: Driver, applied: str,
                                                              canary: str) -> None:
    permission = cloud.deny_value_writes()
    before = cloud.value_write_calls()
    if cloud.lock_writes_a_value:  # Azure: the apply is refused at its lock, before any change
        with pytest.raises(CloudsyncError) as refused:
            target.apply()
        (diagnostic,) = refused.value.diagnostics
        error = f"{diagnostic.message} (hint: {diagnostic.hint})"
    else:
        outcome = target.apply()
        assert not outcome.ok
        (error,) = outcome.errors
        assert cloud.value_write_calls() - before == 1  # not retried: waiting does not grant a permission
    assert permission in error and "permissions --target" in error  # what to grant, and where to see it all
    assert cloud.native_value(applied) == canary  # nothing half-written
    assert target.plan().changes == [Change(NAME, "update", ("value",))]  # still to do


@networked
def test_a_write_whose_answer_was_lost_is_retried_without_harm(cloud: Cloud, target: Driver, applied: str,
                                                               canary: str) -> None:
    versions = cloud.versions(applied)
    cloud.lose_value_write()  # the cloud stores the value; the answer never arrives
    outcome = target.apply()
    assert outcome.ok, outcome.errors
    assert cloud.pending_faults() == 0
    assert cloud.native_value(applied) == canary + "-rotated"
    assert target.plan().changes == []  # cloudsync knows which version it wrote
    if cloud.idempotent_value_write:  # AWS: the retry carries the same ClientRequestToken
        assert cloud.versions(applied) == versions + 1
    else:  # GCP and Azure have no request id for a value: the retry adds a second, identical version
        assert cloud.versions(applied) == versions + 2


MANY = "".join(f"""\
- name: payments/key-{i}
  targets: [T]
  value: {{generate: {{length: 24}}}}
""" for i in range(5))


@networked
def test_listings_are_read_to_the_last_page(cloud: Cloud, target: Driver) -> None:
    target.declare(MANY + "- name: payments/legacy\n  targets: [T]\n")
    legacy = target.plan().remote_name("payments/legacy")
    cloud.put_unowned(legacy, "theirs", {})
    target.declare(MANY)
    target.converge()
    cloud.short_pages(2)  # 5 secrets, the fingerprint key and an unowned one: four pages at least
    before = cloud.list_calls()
    planned = target.plan()
    assert planned.changes == []  # a secret on a page not read would be planned as a create
    assert cloud.list_calls() - before >= 4
    assert target.import_names() == ["payments/legacy"]  # found on whichever page it is
    drifted = [(d.secret, d.kind.value) for d in target.drift().drifted]
    assert drifted == [(legacy, "unmanaged")]

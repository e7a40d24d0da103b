"""The provider contract, part 4: old versions retire after their grace period, in every target kind.

After cloudsync writes a new value of a generated secret, the version it superseded stays
readable for the grace period (consumers that cached it keep working); the first apply
after that disables it (GCP and Azure: disabled; AWS: its AWSPREVIOUS label removed, so no
staging label reaches it; local: disabled). The plan's clock drives time. A version
cloudsync did not write, and the current version, are never disabled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloudsync.providers.base import ProviderError
from tests.providers.contract import drive
from tests.providers.contract.clouds import Cloud
from tests.providers.contract.drive import Change, Driver

NAME = "payments/api-token"


def _secret(length: int, grace: str) -> str:
    return f"""\
- name: {NAME}
  targets: [T]
  value: {{generate: {{length: {length}}}}}
  rotation: {{every: 30d, grace: {grace}}}
"""


def _no_value_shown(*values: str | None) -> None:
    shown = [v for v in values if v and any(v in text for text in drive.OUTPUTS)]
    assert not shown, "a generated value appeared in a plan, report or diagnostic"


def _current(target: Driver, remote_name: str) -> str:
    remote = target.remote(remote_name)
    assert remote is not None and remote.current_version is not None
    return remote.current_version


def test_the_old_version_stays_enabled_during_grace_and_a_later_apply_disables_it(cloud: Cloud,
                                                                                 target: Driver) -> None:
    target.declare(_secret(32, "1d"))
    name = target.converge().remote_name(NAME)
    first, old_value = _current(target, name), cloud.native_value(name)

    target.declare(_secret(40, "1d"))  # new generator settings: a new value, like a scheduled rotation
    assert target.plan().changes == [Change(NAME, "update", ("value",))]
    target.converge()  # the next plan, inside the grace period, has nothing to do
    second, new_value = _current(target, name), cloud.native_value(name)
    assert second != first and new_value != old_value
    assert cloud.enabled_versions(name) == {first: True, second: True}

    assert target.plan(when=datetime.now(UTC) + timedelta(hours=23)).changes == []
    later = datetime.now(UTC) + timedelta(days=2)
    planned = target.plan(when=later)
    assert planned.changes == [Change(NAME, "update", ("retire",))]
    (change,) = planned.run.plan.real_changes
    assert any(f"previous version {first} (written " in d and "grace ended" in d for d in change.details)
    target.converge(when=later)
    assert cloud.enabled_versions(name) == {first: False, second: True}
    assert cloud.native_value(name) == new_value  # the current value is untouched
    _no_value_shown(old_value, new_value)


def test_grace_0_retires_the_old_version_in_the_same_apply(cloud: Cloud, target: Driver) -> None:
    target.declare(_secret(32, "0"))
    name = target.converge().remote_name(NAME)
    first = _current(target, name)
    target.declare(_secret(40, "0"))
    assert target.plan().changes == [Change(NAME, "update", ("value", "retire"))]
    target.converge()
    second = _current(target, name)
    assert cloud.enabled_versions(name) == {first: False, second: True}
    _no_value_shown(cloud.native_value(name))


def test_a_version_superseded_again_within_its_grace_is_retired_by_the_next_write(cloud: Cloud,
                                                                                 target: Driver) -> None:
    target.declare(_secret(32, "1d"))
    name = target.converge().remote_name(NAME)
    first = _current(target, name)
    target.declare(_secret(40, "1d"))
    target.converge()
    second = _current(target, name)
    target.declare(_secret(48, "1d"))
    assert target.plan().changes == [Change(NAME, "update", ("value", "retire"))]
    target.converge()
    third = _current(target, name)
    # The first is no longer the previous value: retired now; the second gets its grace period.
    assert cloud.enabled_versions(name) == {first: False, second: True, third: True}


def test_a_version_cloudsync_did_not_write_is_never_disabled(cloud: Cloud, target: Driver, canary: str) -> None:
    target.declare(_secret(32, "0"))
    name = target.converge().remote_name(NAME)
    first = _current(target, name)
    cloud.put_value(name, canary)  # someone else writes a value; cloudsync undoes it with a new one
    theirs = _current(target, name)
    retires = ("retire",) if cloud.records_own_version_after_foreign_write else ()
    assert target.plan().changes == [Change(NAME, "update", ("value", *retires))]
    target.converge()
    ours = _current(target, name)
    enabled = cloud.enabled_versions(name)
    assert enabled[theirs] is True and enabled[ours] is True
    assert enabled[first] is False  # cloudsync's own superseded version is retired (AWS: two writes on)
    with pytest.raises(ProviderError) as refused:
        target.retire(name, theirs)  # even asked directly, the adapter refuses
    assert refused.value.code == "RetireRefused"
    assert cloud.enabled_versions(name)[theirs] is True


def test_the_current_version_is_never_disabled(cloud: Cloud, target: Driver) -> None:
    target.declare(_secret(32, "1d"))
    name = target.converge().remote_name(NAME)
    current = _current(target, name)
    with pytest.raises(ProviderError) as refused:
        target.retire(name, current)
    assert refused.value.code == "RetireRefused"
    assert cloud.enabled_versions(name) == {current: True}
    assert target.plan(when=datetime.now(UTC) + timedelta(days=5)).changes == []


def _old_versions(target: Driver, when: datetime | None = None) -> list[tuple[str, bool]]:
    report = target.access_versions(now=when)
    (item,) = [s for s in report.secrets if s.facts.secret == NAME]
    assert item.facts.old_versions is not None, "the versions were listed"
    return [(v.version, v.past_grace(item.facts.grace)) for v in item.facts.old_versions]


def test_access_versions_shows_the_live_old_version_and_when_its_grace_ended(cloud: Cloud, target: Driver) -> None:
    target.declare(_secret(32, "1d"))
    name = target.converge().remote_name(NAME)
    assert _old_versions(target) == []
    first = _current(target, name)
    target.declare(_secret(40, "1d"))
    target.converge()
    assert _old_versions(target) == [(first, False)]  # inside its grace period
    later = datetime.now(UTC) + timedelta(days=2)
    assert _old_versions(target, later) == [(first, True)]  # one past grace: the next apply retires it
    assert not [d for d in target.access_versions(now=later).diagnostics if "CS016" in d.message]
    target.converge(when=later)
    assert _old_versions(target, later) == []

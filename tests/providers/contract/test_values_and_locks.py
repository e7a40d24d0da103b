"""The provider contract, part 2: values, the fingerprint key, the apply lock; where the four
target kinds differ, pinned in one table."""

from __future__ import annotations

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.base import LockedError, NotFoundError
from tests.providers.contract.clouds import Aws, Azure, Cloud, Gcp, Local
from tests.providers.contract.drive import STACK, Driver

NAME = "payments/api-key"
SECRET = """\
- name: payments/api-key
  targets: [T]
  value: {env: API_KEY}
"""


def test_where_the_target_kinds_differ() -> None:
    """Every difference the suite allows, in one place: a change here is a change of contract."""
    table = {cls.kind: (cls.soft_delete, cls.networked, cls.idempotent_value_write, cls.lock_writes_a_value)
             for cls in (Local, Aws, Gcp, Azure)}
    assert table == {
        # kind: (a delete can be undone, calls cross a network, a retried value write adds no version,
        #        the apply lock needs the value-writing permission)
        "local": (True, False, False, False),  # an embedded file: no throttling, lost answers, pages or IAM
        "aws": (True, True, True, False),  # PutSecretValue's ClientRequestToken
        "gcp": (False, True, False, False),  # no soft delete; AddSecretVersion has no request id
        "azure": (True, True, False, True),  # a value PUT has no request id; the lock is a secret too
    }


def test_read_value_returns_the_value_and_absence_is_not_found(cloud: Cloud, target: Driver, canary: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", canary)
    target.declare(SECRET)
    remote_name = target.converge().remote_name(NAME)
    assert target.read_value(remote_name).reveal_text() == canary
    with pytest.raises(NotFoundError) as missing:  # the class, whatever the cloud's own error
        target.read_value("payments-nothing-here")
    assert not missing.value.transient and canary not in str(missing.value)


def test_the_fingerprint_key_is_made_once_kept_in_the_target_and_never_planned(cloud: Cloud,
                                                                               target: Driver) -> None:
    target.declare("")
    assert target.fingerprint_key(create=False) is None
    key = target.fingerprint_key(create=True)
    assert key is not None and len(key) == 64
    assert target.fingerprint_key(create=False) == key  # read back, not made again
    assert f"cloudsync-fingerprint-key-{STACK}" in target.listed()  # it lives in the target itself
    assert target.plan().changes == []  # never a change, never a drift, never offered to import
    assert target.drift().drifted == [] and target.import_names() == []


def test_the_lock_admits_one_apply_at_a_time(cloud: Cloud, target: Driver, canary: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", canary)
    target.declare(SECRET)
    with target.lock("first-apply"):
        with pytest.raises(LockedError) as held, target.lock("second-apply"):
            pass
        assert "locked by another apply" in held.value.message or "could not be taken" in held.value.message
        with pytest.raises(CloudsyncError) as refused:  # a whole apply meanwhile writes nothing
            target.apply()
        assert any(cloud.target in d.message for d in refused.value.diagnostics)
        assert cloud.native_value(target.plan().remote_name(NAME)) is None
    with target.lock("second-apply"):  # released: the next one gets it
        pass
    target.converge()

"""Two applies on one AWS target at once: the second fails clearly; a dead holder's lock is taken over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.base import LockedError, ReadQuery
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import DB_PASSWORD, Engine, assert_applied, changes, stack_yaml

LOCK = "cloudsync-lock-payments"


@pytest.fixture
def stack(engine: Engine, aws: MotoServer, canary: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    return engine


def test_a_second_apply_fails_while_the_first_holds_the_lock(stack: Engine, provider: AwsProvider, sm: Any) -> None:
    with provider.lock("alice@ci-runner-1 stack payments"):
        with pytest.raises(CloudsyncError) as raised:
            stack.apply()
        (diag,) = raised.value.diagnostics
        assert "target aws-prod is locked by another apply (alice@ci-runner-1 stack payments since" in diag.message
        assert diag.hint is not None and LOCK in diag.hint
        assert changes(stack.plan()) == [("aws-prod:payments/db-password", "create", ("value", "access"))]
        assert LOCK not in [s.name for s in provider.read(ReadQuery("payments", frozenset(), frozenset()))]
    assert LOCK not in [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]]
    assert_applied(stack.apply()[1])  # released: the next apply runs
    assert changes(stack.plan()) == []


def test_the_lock_is_released_when_the_apply_fails(provider: AwsProvider) -> None:
    with pytest.raises(RuntimeError), provider.lock("bob"):
        raise RuntimeError("boom")
    with provider.lock("carol"):
        pass


def test_a_lock_left_by_a_dead_process_is_taken_over(stack: Engine, provider: AwsProvider,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    crashed = provider.lock("crashed")
    crashed.__enter__()  # never released, like a process that died
    with pytest.raises(LockedError), provider.lock("waiting"):
        pass
    monkeypatch.setattr("cloudsync.providers.aws.lock.LOCK_TTL", timedelta(seconds=-1))
    monkeypatch.setattr("cloudsync.providers.aws.lock.RETRY_DELAY", 0.0)
    assert_applied(stack.apply()[1])
    crashed.__exit__(None, None, None)  # the late release finds the lock gone: a no-op

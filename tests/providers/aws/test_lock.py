"""The apply lock of an AWS target, a lease: one apply at a time, free soon after its holder dies."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.lock import EXPIRES_TAG
from cloudsync.providers.base import ReadQuery
from cloudsync.providers.lease import LeaseTerms
from tests.conftest import CliResult
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import DB_PASSWORD, Engine, assert_applied, changes, stack_yaml, tags_of
from tests.providers.leases import Clock, check_lease_contract

LOCK = "cloudsync-lock-payments"


@pytest.fixture
def stack(engine: Engine, aws: MotoServer, canary: str, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("DB_PASSWORD", canary)
    engine.write(stack_yaml(aws.url, DB_PASSWORD))
    return engine


def lock_names(sm: Any) -> list[str]:
    return [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"] if s["Name"] == LOCK]


def test_the_lock_is_a_lease_held_while_renewed_and_taken_over_after_its_holder_dies(provider: AwsProvider) -> None:
    check_lease_contract(provider.target_lock, Clock())


def test_a_second_apply_fails_while_the_first_holds_the_lock(stack: Engine, provider: AwsProvider, sm: Any) -> None:
    with provider.lock("alice@ci-runner-1 stack payments"):
        with pytest.raises(CloudsyncError) as raised:
            stack.apply()
        (diag,) = raised.value.diagnostics
        assert "target aws-prod is locked by another apply (alice@ci-runner-1 stack payments since" in diag.message
        assert "its lease expires in" in diag.message
        assert diag.hint is not None and f"secret {LOCK}" in diag.hint and "force-unlock --target aws-prod" in diag.hint
        assert changes(stack.plan()) == [("aws-prod:payments/db-password", "create", ("value", "access"))]
        assert LOCK not in [s.name for s in provider.read(ReadQuery("payments", frozenset(), frozenset()))]
    assert lock_names(sm) == []
    assert_applied(stack.apply()[1])  # released: the next apply runs
    assert changes(stack.plan()) == []


def test_the_lock_is_released_when_the_apply_fails(provider: AwsProvider) -> None:
    with pytest.raises(RuntimeError), provider.lock("bob"):
        raise RuntimeError("boom")
    with provider.lock("carol"):
        pass


def test_an_expired_lease_left_by_a_dead_process_is_taken_over_by_the_next_apply(
        stack: Engine, provider: AwsProvider, sm: Any) -> None:
    dead = provider.target_lock()  # took the lock ten minutes ago, then died: never renewed, never released
    assert dead.acquire("crashed", LeaseTerms(clock=Clock(Clock().now - timedelta(minutes=10)))) is None
    assert_applied(stack.apply()[1])
    assert lock_names(sm) == []  # the taker released its own lock; the dead one's is gone


def test_the_holder_renews_its_lease_in_the_background(provider: AwsProvider, sm: Any) -> None:
    terms = LeaseTerms(duration=timedelta(seconds=2))  # renewed every half second
    with provider.lock("renewing", terms) as lease:
        first = tags_of(sm, LOCK)[EXPIRES_TAG]
        deadline = time.monotonic() + 10
        while tags_of(sm, LOCK)[EXPIRES_TAG] == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tags_of(sm, LOCK)[EXPIRES_TAG] > first
        assert not lease.lost.is_set()
    assert lock_names(sm) == []


def test_force_unlock_names_what_it_removes(stack: Engine, provider: AwsProvider, cli: Callable[..., CliResult],
                                           aws_env: dict[str, str], sm: Any) -> None:
    dead = provider.target_lock()
    assert dead.acquire("ci job 1234 on runner-7", LeaseTerms()) is None
    asked = cli("force-unlock", "--target", "aws-prod", "-C", str(stack.root), env=aws_env)
    assert asked.code == 1 and "refusing to remove the lock" in asked.stderr and "--yes" in asked.stderr
    assert lock_names(sm) == [LOCK]
    forced = cli("force-unlock", "--target", "aws-prod", "-C", str(stack.root), "--yes", env=aws_env)
    assert forced.code == 0, forced.output
    assert f"the secret {LOCK} is held by ci job 1234 on runner-7 since" in forced.stdout
    assert "Removed the apply lock of target aws-prod held by ci job 1234 on runner-7 since" in forced.stdout
    assert lock_names(sm) == []
    again = cli("force-unlock", "--target", "aws-prod", "-C", str(stack.root), "--yes", env=aws_env)
    assert again.code == 0 and "target aws-prod is not locked; nothing to remove" in again.stdout


def test_lock_holder_text_from_the_target_reaches_no_terminal_raw(provider: AwsProvider, stack: Engine,
                                                                  cli: Callable[..., CliResult],
                                                                  aws_env: dict[str, str], tmp_path: Path) -> None:
    # Whoever can tag the lock secret chooses the holder text a user is shown.
    lock = provider.target_lock()
    assert lock.acquire("evil\x1b[2J\rNo changes.", LeaseTerms()) is None
    shown = cli("force-unlock", "--target", "aws-prod", "-C", str(stack.root), env=aws_env)
    assert "\x1b" not in shown.output and "\r" not in shown.output

"""The apply lock of a vault, a lease: one apply at a time, free soon after its holder dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.base import LockedError, Provider, is_reserved
from cloudsync.providers.lease import LeaseTerms
from tests.conftest import CliResult
from tests.fakes.azure import AzureFake
from tests.providers.azure.stacks import apply
from tests.providers.leases import Clock, check_lease_contract

DB = """
- name: payments/db-password
  targets: [azure-prod]
  value: {env: DB_PASSWORD}
"""


@pytest.fixture
def db_stack(azure_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, canary: str) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return azure_stack(DB)


@pytest.fixture
def provider(azure: AzureFake, db_stack: Path) -> Iterator[Provider]:
    with open_session(load_stack(db_stack)) as session:
        yield session.provider("azure-prod")


def test_the_lock_is_a_lease_held_while_renewed_and_taken_over_after_its_holder_dies(provider: Provider) -> None:
    check_lease_contract(provider.target_lock, Clock())


def test_a_second_apply_fails_while_the_first_holds_the_lock(azure: AzureFake, db_stack: Path) -> None:
    stack = load_stack(db_stack)
    with open_session(stack) as first, open_session(stack) as second:
        with first.provider("azure-prod").lock("first apply"):
            with pytest.raises(LockedError) as held, second.provider("azure-prod").lock("second apply"):
                pass
            assert "locked by another apply (first apply since" in held.value.message
            assert "force-unlock --target azure-prod" in (held.value.hint or "")
        # Released: the next apply takes it.
        with second.provider("azure-prod").lock("second apply"):
            pass
    assert azure.vault.snapshot("payments--db-password") is None  # nothing was written meanwhile


def test_an_expired_ticket_left_by_a_dead_process_does_not_block_the_next_apply(
        azure: AzureFake, db_stack: Path, provider: Provider) -> None:
    dead = provider.target_lock()  # took the lock ten minutes ago, then died: its ticket was never renewed
    assert dead.acquire("crashed", LeaseTerms(clock=Clock(Clock().now - timedelta(minutes=10)))) is None
    _run, report = apply(db_stack)
    assert report.ok


def test_the_lock_secret_is_never_planned_drifted_or_imported(azure: AzureFake, db_stack: Path) -> None:
    _run, report = apply(db_stack)  # takes and releases the lock
    assert report.ok
    lock = azure.vault.snapshot("cloudsync-lock-payments")
    assert lock is not None and all(not v.enabled for v in lock.versions)
    assert is_reserved("cloudsync-lock-payments")
    stack = load_stack(db_stack)
    with open_session(stack) as session:
        again = build_plan(session, ["azure-prod"])
    assert again.plan.real_changes == [] and not again.plan.diagnostics


def test_an_apply_costs_three_lock_calls(azure: AzureFake, db_stack: Path) -> None:
    azure.calls.clear()
    _run, report = apply(db_stack)
    assert report.ok
    assert (azure.calls["lock.kv.set"], azure.calls["lock.kv.list_versions"], azure.calls["lock.kv.update"]) == (1, 1, 1)


def test_force_unlock_names_what_it_removes(azure: AzureFake, db_stack: Path, provider: Provider,
                                           cli: Callable[..., CliResult], cli_env: dict[str, str]) -> None:
    assert provider.target_lock().acquire("ci job 5 on runner-1", LeaseTerms()) is None
    forced = cli("force-unlock", "--target", "azure-prod", "-C", str(db_stack), "--yes", env=cli_env)
    assert forced.code == 0, forced.output
    assert "the ticket of the secret cloudsync-lock-payments is held by ci job 5 on runner-1 since" in forced.stdout
    assert "Removed the apply lock of target azure-prod" in forced.stdout
    assert provider.target_lock().holders(LeaseTerms()) == []

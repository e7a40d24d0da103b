"""Two applies on one vault at once: the second fails clearly and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers.base import LockedError, is_reserved
from tests.fakes.azure import AzureFake
from tests.providers.azure.stacks import apply

DB = """
- name: payments/db-password
  targets: [azure-prod]
  value: {env: DB_PASSWORD}
"""


@pytest.fixture
def db_stack(azure_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, canary: str) -> Path:
    monkeypatch.setenv("DB_PASSWORD", canary)
    return azure_stack(DB)


def test_a_second_apply_fails_while_the_first_holds_the_lock(azure: AzureFake, db_stack: Path) -> None:
    stack = load_stack(db_stack)
    with open_session(stack) as first, open_session(stack) as second:
        with first.provider("azure-prod").lock("first apply"):
            with pytest.raises(LockedError) as held, second.provider("azure-prod").lock("second apply"):
                pass
            assert "locked by another apply (first apply since" in held.value.message
        # Released: the next apply takes it.
        with second.provider("azure-prod").lock("second apply"):
            pass
    assert azure.vault.snapshot("payments--db-password") is None  # nothing was written meanwhile


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

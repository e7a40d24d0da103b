"""The apply engine: outcomes per change, retries, convergence after a partial failure."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cloudsync.apply import ChangeResult, Outcome, _token, apply_plan
from cloudsync.config.loader import Stack, load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import build_plan, open_session
from cloudsync.plan.model import Action, Change, Phase
from cloudsync.providers import registry
from cloudsync.providers.base import (
    ProviderError,
    RateLimits,
    RemoteSecret,
    ValueRecord,
    WriteRequest,
    is_reserved,
)
from cloudsync.providers.lease import LeaseTerms
from cloudsync.providers.local import LocalProvider
from tests.conftest import files_containing

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
secrets:
"""


class FaultyLocal(LocalProvider):
    """The real local store, with faults injected per secret name (a test double at the
    provider boundary, like httpx's mock transport — no SDK is patched)."""

    kind = "local"
    faults: dict[str, list[ProviderError]] = {}  # noqa: RUF012 - set per test
    calls: list[str] = []  # noqa: RUF012

    def apply(self, request: WriteRequest) -> ValueRecord | None:
        FaultyLocal.calls.append(request.name)
        queue = FaultyLocal.faults.get(request.name)
        if queue:
            raise queue.pop(0)
        return super().apply(request)


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FaultyLocal]]:
    FaultyLocal.faults = {}
    FaultyLocal.calls = []
    monkeypatch.setitem(registry.ADAPTERS, "local",
                        registry.ADAPTERS["local"]._replace(module=__name__, class_name="FaultyLocal"))
    yield FaultyLocal


def make_stack(write_stack: Callable[..., Path], names: list[str]) -> Stack:
    body = "".join(f"  - name: {n}\n    targets: [local]\n    value: {{env: SHOP_VALUE}}\n" for n in names)
    return load_stack(write_stack(STACK + body))


def plan_and_apply(stack: Stack, **kw: Any) -> tuple[Any, Any]:
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets))
        report = apply_plan(session, run, sleep=lambda _s: None, **kw)
        return run, report


def test_transient_errors_are_retried_honouring_retry_after(faulty: type[FaultyLocal], canary: str,
                                                            write_stack: Callable[..., Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    stack = make_stack(write_stack, ["a/one"])
    faulty.faults["a/one"] = [ProviderError("slow down", code="Throttling", transient=True, retry_after=3.0)] * 2
    slept: list[float] = []
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
        report = apply_plan(session, run, sleep=slept.append)
    assert [r.outcome for r in report.results] == [Outcome.APPLIED]
    assert report.results[0].attempts == 3 and slept == [3.0, 3.0]


def test_partial_failure_reports_each_change_and_a_rerun_converges(
        faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cloudsync")
    monkeypatch.setenv("SHOP_VALUE", canary)
    stack = make_stack(write_stack, ["a/one", "a/two", "a/three"])
    faulty.faults["a/two"] = [ProviderError("access denied", code="AccessDenied", hint="grant write")]
    _, report = plan_and_apply(stack)
    outcomes = {r.change.secret: (r.outcome, r.error) for r in report.results}
    assert outcomes["a/one"] == (Outcome.APPLIED, None)
    assert outcomes["a/three"] == (Outcome.APPLIED, None)
    assert outcomes["a/two"][0] is Outcome.FAILED
    assert outcomes["a/two"][1] == "access denied [AccessDenied] (hint: grant write)"
    assert not report.ok

    run, report = plan_and_apply(stack)  # the fault is gone: only the failed change remains
    assert [(c.secret, c.action.value) for c in run.plan.real_changes] == [("a/two", "create")]
    assert report.ok
    run, _ = plan_and_apply(stack)
    assert run.plan.real_changes == []
    assert canary not in caplog.text
    assert files_containing(stack.root, canary) == []


def test_permanent_errors_are_not_retried(faulty: type[FaultyLocal], canary: str,
                                         write_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    stack = make_stack(write_stack, ["a/one"])
    faulty.faults["a/one"] = [ProviderError("bad request", code="InvalidParameter")]
    _, report = plan_and_apply(stack)
    assert report.results[0].attempts == 1 and faulty.calls.count("a/one") == 1


def test_an_unexpected_exception_fails_one_change_without_a_traceback(
        faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    stack = make_stack(write_stack, ["a/one", "a/two"])
    faulty.faults["a/one"] = [RuntimeError(canary)]  # type: ignore[list-item]
    _, report = plan_and_apply(stack)
    errors = {r.change.secret: r.error for r in report.results}
    assert errors == {"a/one": "unexpected error (RuntimeError)", "a/two": None}


# -- phases, stop requests and the audit log as it happens ------------------------------


class TimedLocal(LocalProvider):
    """The real local store with parallel writes allowed, recording when each write starts and ends."""

    kind = "local"
    limits = RateLimits(writes_per_second=10_000, max_parallel=4)
    events: list[tuple[str, str, str]] = []  # noqa: RUF012 - (start|end, action, name), reset per test
    delete_started = threading.Event()
    on_write: Callable[[WriteRequest], None] | None = None

    def apply(self, request: WriteRequest) -> ValueRecord | None:
        if is_reserved(request.name):
            return super().apply(request)
        TimedLocal.events.append(("start", request.action, request.name))
        if request.action == "delete":
            TimedLocal.delete_started.set()
        elif request.action == "create":
            # A delete that does not wait for this create starts meanwhile; give it the chance.
            TimedLocal.delete_started.wait(timeout=0.5)
        if TimedLocal.on_write is not None:
            TimedLocal.on_write(request)
        try:
            return super().apply(request)
        finally:
            TimedLocal.events.append(("end", request.action, request.name))


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[TimedLocal]]:
    TimedLocal.events = []
    TimedLocal.delete_started = threading.Event()
    TimedLocal.on_write = None
    monkeypatch.setitem(registry.ADAPTERS, "local", registry.ADAPTERS["local"]._replace(module=__name__, class_name="TimedLocal"))
    yield TimedLocal


def test_a_rename_creates_the_new_name_before_deleting_the_old_one_with_parallel_writes(
        timed: type[TimedLocal], canary: str, write_stack: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    plan_and_apply(make_stack(write_stack, ["a/old", "b/one"]))
    timed.events.clear()
    renamed = make_stack(write_stack, ["a/new", "b/one", "b/two"])
    run, report = plan_and_apply(renamed, parallelism=8)
    assert {(c.secret, c.action.value, c.phase) for c in run.plan.real_changes} == {
        ("a/new", "create", Phase.WRITE), ("b/two", "create", Phase.WRITE), ("a/old", "delete", Phase.DELETE)}
    assert report.ok
    order = [(kind, name) for kind, _action, name in timed.events]
    first_delete = order.index(("start", "a/old"))
    assert first_delete > order.index(("end", "a/new")) and first_delete > order.index(("end", "b/two"))


def test_a_delete_waits_for_every_write_of_its_target_and_is_not_attempted_when_one_failed(
        faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    plan_and_apply(make_stack(write_stack, ["a/old"]))
    renamed = make_stack(write_stack, ["a/new"])
    faulty.faults["a/new"] = [ProviderError("access denied", code="AccessDenied")]
    _, report = plan_and_apply(renamed)
    outcomes = {r.change.secret: (r.outcome, r.error) for r in report.results}
    assert outcomes["a/new"][0] is Outcome.FAILED
    assert outcomes["a/old"] == (Outcome.NOT_ATTEMPTED, "not started: an earlier change on target local did not "
                                                         "apply, and deletes run only after every create and update has")
    assert "a/old" not in faulty.calls[faulty.calls.index("a/new"):]
    run, report = plan_and_apply(renamed)  # the fault is gone: the rename completes
    assert report.ok and [(c.secret, c.action.value) for c in run.plan.real_changes] == [
        ("a/new", "create"), ("a/old", "delete")]


def test_a_stop_request_lets_the_write_in_flight_finish_and_starts_no_other(
        timed: type[TimedLocal], canary: str, write_stack: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    monkeypatch.setattr(TimedLocal, "limits", RateLimits(max_parallel=1))
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(audit))
    stack = make_stack(write_stack, ["a/one", "a/two", "a/three", "a/four"])
    stop = threading.Event()
    timed.delete_started.set()  # no delete in this plan: creates need not wait
    timed.on_write = lambda request: stop.set() if request.name == "a/one" else None  # SIGTERM arrives here
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
        report = apply_plan(session, run, parallelism=1, stop=stop, stop_reason=lambda: "SIGTERM received",
                            sleep=lambda _s: None)
    assert [(r.change.secret, r.outcome) for r in report.results] == [
        ("a/four", Outcome.APPLIED), ("a/one", Outcome.APPLIED), ("a/three", Outcome.NOT_ATTEMPTED),
        ("a/two", Outcome.NOT_ATTEMPTED)]
    assert report.stopped == "SIGTERM received" and not report.ok
    assert {r.error for r in report.results if r.outcome is Outcome.NOT_ATTEMPTED} == {"not started: SIGTERM received"}
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    assert events[-1]["result"] == "stopped" and events[-1]["summary"] == {
        "applied": 2, "failed": 0, "not-attempted": 2}


def test_a_lost_lock_stops_new_changes(timed: type[TimedLocal], canary: str, write_stack: Callable[..., Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    monkeypatch.setattr(TimedLocal, "limits", RateLimits(max_parallel=1))
    stack = make_stack(write_stack, ["a/one", "a/two", "a/three"])
    timed.delete_started.set()
    with open_session(stack) as session, session.locks(["local"], "test", LeaseTerms()) as leases:
        timed.on_write = lambda _request: leases["local"].lose("removed by force-unlock")
        run = build_plan(session, ["local"])
        report = apply_plan(session, run, parallelism=1, sleep=lambda _s: None)
    assert [r.outcome for r in report.results].count(Outcome.APPLIED) == 1
    assert report.stopped == "the lock of target local was lost (removed by force-unlock)"


def test_a_stop_request_cuts_a_retry_short(faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    stack = make_stack(write_stack, ["a/one"])
    faulty.faults["a/one"] = [ProviderError("slow down", code="Throttling", transient=True, retry_after=30.0)]
    stop = threading.Event()
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
        report = apply_plan(session, run, stop=stop, sleep=lambda _s: stop.set())  # the signal comes while waiting
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and result.attempts == 1
    assert result.error == "slow down [Throttling] (not retried: the apply was stopped)"


def test_each_outcome_is_in_the_audit_log_before_the_apply_goes_on(
        faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(audit))
    stack = make_stack(write_stack, ["a/one", "a/two"])
    faulty.faults["a/two"] = [ProviderError("access denied", code="AccessDenied")]
    seen: list[tuple[ChangeResult, list[dict[str, object]]]] = []

    def on_result(result: ChangeResult) -> None:  # called as each change ends
        seen.append((result, [json.loads(line) for line in audit.read_text().splitlines()]))

    with open_session(stack) as session:
        report = apply_plan(session, build_plan(session, ["local"]), on_result=on_result, sleep=lambda _s: None)
    assert not report.ok
    for result, lines in seen:  # when a change has ended, its outcome is already on disk
        assert lines[0]["event"] == "apply-start"
        recorded = [(e["address"], e["outcome"]) for e in lines if e["event"] == "change"]
        assert (result.change.address, result.outcome.value) in recorded
        assert "apply-end" not in [e["event"] for e in lines]
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    failed = [e for e in events if e["event"] == "change" and e["outcome"] == "failed"]
    assert failed == [{**failed[0], "address": "local:a/two", "error": "access denied [AccessDenied]"}]
    assert events[-1]["event"] == "apply-end" and events[-1]["result"] == "incomplete"
    assert canary not in audit.read_text()


def test_an_unwritable_audit_log_stops_the_apply_before_any_write(
        faulty: type[FaultyLocal], canary: str, write_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv("SHOP_VALUE", canary)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(blocker / "audit.jsonl"))
    stack = make_stack(write_stack, ["a/one"])
    with open_session(stack) as session, pytest.raises(CloudsyncError) as raised:
        apply_plan(session, build_plan(session, ["local"]))
    assert "cannot open the audit log" in raised.value.diagnostics[0].message
    assert faulty.calls == []


def test_a_value_write_token_is_the_same_on_a_rerun_and_new_once_the_metadata_moved() -> None:
    record = ValueRecord(fingerprint="fp-new", key_id="k1")
    old = RemoteSecret(name="db", record=ValueRecord(fingerprint="fp-old", key_id="k1", version="v1"))
    change = Change(address="aws:db", target="aws", provider="aws", secret="db", remote_name="db",
                    action=Action.UPDATE, before=old)
    moved_stage = replace(change, before=replace(old, record=replace(old.record, version="v2"),  # type: ignore[arg-type]
                                                 current_version="v2"))
    assert _token("digest-1", change, record) == _token("digest-2", moved_stage, record)
    after_success = replace(change, before=replace(old, record=record))
    assert _token("digest-3", after_success, record) != _token("digest-1", change, record)
    assert _token("digest-1", change, None) != _token("digest-2", change, None)  # no value: per plan

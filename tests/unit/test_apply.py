"""The apply engine: outcomes per change, retries, convergence after a partial failure."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudsync.apply import Outcome, apply_plan
from cloudsync.config.loader import Stack, load_stack
from cloudsync.plan.build import build_plan, open_session
from cloudsync.providers import registry
from cloudsync.providers.base import ProviderError, ValueRecord, WriteRequest
from cloudsync.providers.local import LocalProvider
from cloudsync.ratelimit import RateLimiter
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


def test_rate_limiter_spaces_requests() -> None:
    clock = [0.0]
    limiter = RateLimiter(rate=10.0, burst=1.0)
    limiter.stamp = 0.0
    limiter.tokens = 1.0

    import cloudsync.ratelimit as apply_module

    original = apply_module.time
    waits: list[float] = []

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            waits.append(seconds)
            clock[0] += seconds

    apply_module.time = FakeTime  # type: ignore[assignment]
    try:
        for _ in range(3):
            limiter.acquire()
    finally:
        apply_module.time = original
    assert clock[0] == pytest.approx(0.2)  # 3 requests at 10/s with a burst of 1: two waits of 0.1 s

"""Two applies of one stack at once, and applies that are stopped or killed, on the local provider.

Contract: of two concurrent applies exactly one writes; the other fails (or waits with
--lock-timeout) and changes nothing. A stopped apply finishes what is in flight, starts
nothing new, releases its lock and leaves an audit record of every write — killed
(SIGKILL) too.
"""

from __future__ import annotations

import functools
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.cli import apply as apply_command
from cloudsync.cli import plan as plan_command
from cloudsync.providers.base import ProviderContext
from cloudsync.providers.local import LocalProvider
from cloudsync.providers.local_rules import LocalTarget
from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.e2e.concurrency import audit_events, lost_race, start, start_hooked, together, wait_for, writers

TRIALS = 20

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
policy: {builtin: false}  # these tests are about locks and signals; tests/policy covers the pack
secrets:
"""


def stack_text(count: int) -> str:
    body = "".join(f"  - name: shop/generated-{i:02d}\n    targets: [local]\n    value: {{generate: {{length: 24}}}}\n"
                   for i in range(count))
    body += "  - name: shop/db-password\n    targets: [local]\n    value: {env: SHOP_DB_PASSWORD}\n"
    return STACK + body


def versions(root: Path) -> dict[str, int]:
    """Versions each secret has in the store (a second apply that wrote adds a second version)."""
    with sqlite3.connect(root / ".cloudsync" / "local.db") as conn:
        rows = conn.execute("SELECT name, COUNT(*) FROM versions WHERE name NOT LIKE 'cloudsync-%' "
                            "GROUP BY name").fetchall()
    return {str(name): int(count) for name, count in rows}


@pytest.fixture
def env(canary: str, tmp_path: Path) -> dict[str, str]:
    return {"SHOP_DB_PASSWORD": canary, "CLOUDSYNC_PLAN_KEY": "k" * 40}


def test_two_applies_started_together_never_both_write(write_stack: Callable[..., Path], tmp_path: Path,
                                                       env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CLOUDSYNC_AUDIT_LOG", raising=False)
    for trial in range(TRIALS):
        root = write_stack(stack_text(3), root=tmp_path / f"trial-{trial}")
        plan_file = None
        if trial % 2:  # the same signed plan applied twice at once
            plan_file = root / "plan.json"
            plan_command(directory=root, out_file=plan_file)
        apply_once = functools.partial(apply_command, plan_file, directory=root, auto_approve=True)
        codes = together(apply_once, apply_once)
        assert sorted(codes) in ([0, 0], [0, 1]), f"trial {trial}: {codes}"
        assert versions(root) == {"shop/db-password": 1, **{f"shop/generated-{i:02d}": 1 for i in range(3)}}
        assert len(writers(audit_events(root / ".cloudsync" / "audit.jsonl"))) == 1, f"trial {trial}"


def test_two_cloudsync_processes_started_together_never_both_write(write_stack: Callable[..., Path],
                                                                   tmp_path: Path, env: dict[str, str],
                                                                   canary: str) -> None:
    for trial in range(3):  # a few real processes; benchmarks/concurrent_apply.py runs many more
        root = write_stack(stack_text(3), root=tmp_path / f"trial-{trial}")
        args = ["apply", "--auto-approve", "-C", str(root)]
        first, second = start(args, env, cwd=root), start(args, env, cwd=root)
        results = [first.finish(), second.finish()]
        for _, output in results:
            assert_no_canary(canary, output)
        winners = [r for r in results if r[0] == 0 and "Apply complete: 4 applied" in r[1]]
        assert len(winners) == 1, f"trial {trial}: {results}"
        loser = results[1] if results[0] is winners[0] else results[0]
        assert lost_race(*loser), f"trial {trial}: {loser}"
        assert versions(root) == {"shop/db-password": 1, **{f"shop/generated-{i:02d}": 1 for i in range(3)}}


@pytest.mark.parametrize("saved_plan", [False, True], ids=["apply", "apply-plan-file"])
def test_an_apply_paused_before_its_lock_changes_nothing_the_other_wrote(
        write_stack: Callable[..., Path], tmp_path: Path, env: dict[str, str], cli: Callable[..., CliResult],
        saved_plan: bool) -> None:
    # The reproduction: the second apply pauses just before taking its lock while the first
    # runs to the end. Its lock must come before it reads anything, or it writes from a stale read.
    root = write_stack(stack_text(2))
    args = ["apply", "--auto-approve", "-C", str(root)]
    if saved_plan:
        assert cli("plan", "-C", str(root), "--out", str(tmp_path / "plan.json"), env=env).code == 0
        args = ["apply", str(tmp_path / "plan.json"), "-C", str(root)]
    hooks = tmp_path / "hooks"
    paused = start_hooked(args, env, cwd=root, hooks=hooks, HOOK_PAUSE_LOCK="1")
    wait_for(hooks / "at-lock", paused)
    code, output = start(args, env, cwd=root).finish()
    assert code == 0 and "Apply complete: 3 applied" in output, output
    (hooks / "go-lock").touch()
    code, output = paused.finish()
    assert lost_race(code, output), output
    assert ("is stale" in output) if saved_plan else ("Nothing to apply." in output)
    assert versions(root) == {"shop/db-password": 1, "shop/generated-00": 1, "shop/generated-01": 1}


def test_lock_timeout_waits_for_the_running_apply(write_stack: Callable[..., Path], tmp_path: Path,
                                                  env: dict[str, str], cli: Callable[..., CliResult]) -> None:
    root = write_stack(stack_text(1))
    holder = LocalProvider("local", LocalTarget(provider="local"), ProviderContext(stack="shop", root=root))
    lock = holder.lock("a long apply")
    lock.__enter__()
    try:
        refused = cli("apply", "--auto-approve", "-C", str(root), env=env)
        assert refused.code == 1 and "locked by another apply (a long apply (pid" in refused.stderr
        assert "--lock-timeout" in refused.stderr and "force-unlock --target local" in refused.stderr
        waiting = start(["apply", "--auto-approve", "--lock-timeout", "2min", "-C", str(root)], env, cwd=root)
    finally:
        lock.__exit__(None, None, None)
    code, output = waiting.finish()
    assert code == 0 and "Apply complete: 2 applied" in output, output
    bad = cli("apply", "--auto-approve", "--lock-timeout", "soon", "-C", str(root), env=env)
    assert bad.code == 1 and "--lock-timeout: bad duration 'soon'" in bad.stderr and "Traceback" not in bad.output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_apply_finishes_in_flight_writes_starts_none_and_releases_its_lock(
        write_stack: Callable[..., Path], tmp_path: Path, env: dict[str, str], canary: str,
        cli: Callable[..., CliResult], sig: signal.Signals) -> None:
    root = write_stack(stack_text(6))
    hooks = tmp_path / "hooks"
    proc = start_hooked(["apply", "--auto-approve", "-C", str(root)], env, cwd=root, hooks=hooks, HOOK_BLOCK_AT="3")
    wait_for(hooks / "at-write", proc)  # two writes done, the third in flight
    proc.signal(sig)
    wait_for(hooks / "signalled", proc)
    (hooks / "go-write").touch()  # the write in flight completes after the signal
    code, output = proc.finish()
    assert code == 1, output
    assert f"Apply stopped ({sig.name} received): 3 applied, 0 failed, 4 not attempted." in output
    assert output.count("skipped") == 4 and "Traceback" not in output
    assert_no_canary(canary, output)
    assert sum(versions(root).values()) == 3

    events = audit_events(root / ".cloudsync" / "audit.jsonl")
    outcomes = [e["outcome"] for e in events if e["event"] == "change"]
    assert sorted(outcomes) == ["applied"] * 3 + ["not-attempted"] * 4
    end = events[-1]
    assert end["event"] == "apply-end" and end["result"] == "stopped" and end["stopped"] == f"{sig.name} received"

    again = cli("apply", "--auto-approve", "-C", str(root), env=env)  # the lock is free at once
    assert again.code == 0 and "Apply complete: 4 applied" in again.output, again.output
    assert versions(root) == {"shop/db-password": 1, **{f"shop/generated-{i:02d}": 1 for i in range(6)}}
    assert files_containing(tmp_path, canary, skip=lambda p: p.name.startswith("local.db")) == []


def test_a_signal_while_planning_unwinds_before_any_write(write_stack: Callable[..., Path], tmp_path: Path,
                                                          env: dict[str, str], cli: Callable[..., CliResult]) -> None:
    root = write_stack(stack_text(2))
    hooks = tmp_path / "hooks"
    proc = start_hooked(["apply", "--auto-approve", "-C", str(root)], env, cwd=root, hooks=hooks, HOOK_PAUSE_LOCK="1")
    wait_for(hooks / "at-lock", proc)
    proc.signal(signal.SIGTERM)
    (hooks / "go-lock").touch()
    code, output = proc.finish()
    assert code != 0 and "Traceback" not in output, output
    assert not (root / ".cloudsync" / "audit.jsonl").exists()
    assert cli("apply", "--auto-approve", "-C", str(root), env=env).code == 0


def test_a_killed_apply_leaves_a_true_audit_record_and_no_lock(write_stack: Callable[..., Path], tmp_path: Path,
                                                               env: dict[str, str],
                                                               cli: Callable[..., CliResult]) -> None:
    root = write_stack(stack_text(6))
    hooks = tmp_path / "hooks"
    proc = start_hooked(["apply", "--auto-approve", "-C", str(root)], env, cwd=root, hooks=hooks, HOOK_BLOCK_AT="4")
    wait_for(hooks / "at-write", proc)
    proc.signal(signal.SIGKILL)
    proc.finish()

    events = audit_events(root / ".cloudsync" / "audit.jsonl")
    applied = sorted(str(e["address"]).removeprefix("local:") for e in events
                     if e["event"] == "change" and e["outcome"] == "applied")
    assert applied == sorted(versions(root)) and len(applied) == 3  # the record says exactly what was written
    started = {e["address"] for e in events if e["event"] == "change-start"}
    finished = {e["address"] for e in events if e["event"] == "change"}
    assert len(started - finished) == 1  # the write in flight when it died is named, not lost
    assert events[0]["event"] == "apply-start" and all(e["event"] != "apply-end" for e in events)

    again = cli("apply", "--auto-approve", "-C", str(root), env=env)  # the OS released the lock with the process
    assert again.code == 0 and "Apply complete: 4 applied" in again.output, again.output


def test_force_unlock_names_the_holder_and_cannot_break_a_running_apply(
        write_stack: Callable[..., Path], cli: Callable[..., CliResult]) -> None:
    root = write_stack(stack_text(1))
    free = cli("force-unlock", "--target", "local", "-C", str(root))
    assert free.code == 0 and "target local is not locked; nothing to remove" in free.stdout
    holder = LocalProvider("local", LocalTarget(provider="local"), ProviderContext(stack="shop", root=root))
    with holder.lock("ci run 42"):
        asked = cli("force-unlock", "--target", "local", "-C", str(root))
        assert asked.code == 1 and "held by ci run 42 (pid" in asked.stdout and "--yes" in asked.stderr
        forced = cli("force-unlock", "--target", "local", "-C", str(root), "--yes")
        assert forced.code == 1 and "held by a running process" in forced.stderr
        assert "stop that apply instead" in forced.stderr and "Traceback" not in forced.output

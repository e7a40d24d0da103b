"""Two applies on one AWS target at once; applies stopped, killed, and rerun after a kill (moto).

Contract: of two concurrent applies exactly one writes; the other fails (or waits) and
changes nothing. A killed apply's lock blocks the next one for at most its lease; a rerun
after a kill between the value and the metadata write adds no second identical version.
"""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cloudsync.apply import ApplyReport, apply_plan
from cloudsync.cli import apply as apply_command
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.providers.aws.lock import EXPIRES_TAG, HOLDER_TAG, SINCE_TAG
from cloudsync.providers.base import now
from tests.conftest import CliResult, assert_no_canary
from tests.e2e.concurrency import audit_events, lost_race, start, start_hooked, together, wait_for, writers
from tests.fakes.moto_server import FaultProxy, MotoServer
from tests.providers.aws.conftest import DB_PASSWORD, assert_applied, changes, stack_yaml, tags_of

TRIALS = 20
LOCK = "cloudsync-lock-payments"


def secrets_yaml(generated: int) -> str:
    body = "".join(f"- name: payments/token-{i}\n  targets: [aws-prod]\n  value: {{generate: {{length: 32}}}}\n"
                   for i in range(generated))
    return DB_PASSWORD + body


def write_stack(root: Path, endpoint: str, generated: int = 2) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    policy_off = "policy: {builtin: false}  # these tests are about locks; tests/policy covers the pack\n"
    (root / "cloudsync.yaml").write_text(stack_yaml(endpoint, secrets_yaml(generated)) + policy_off)
    return root


def versions(sm: Any) -> dict[str, int]:
    names = [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"].startswith("payments/")]
    return {n: len(sm.list_secret_version_ids(SecretId=n)["Versions"]) for n in names}


@pytest.fixture
def env(aws_env: dict[str, str], canary: str) -> dict[str, str]:
    return {**aws_env, "DB_PASSWORD": canary}


def test_two_applies_started_together_never_both_write(aws: MotoServer, sm: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    for trial in range(TRIALS):
        aws.reset()
        root = write_stack(tmp_path / f"trial-{trial}", aws.url)
        apply_once = functools.partial(apply_command, None, directory=root, auto_approve=True)
        codes = together(apply_once, apply_once)
        assert sorted(codes) in ([0, 0], [0, 1]), f"trial {trial}: {codes}"
        assert versions(sm) == {"payments/db-password": 1, "payments/token-0": 1, "payments/token-1": 1}, trial
        assert len(writers(audit_events(root / ".cloudsync" / "audit.jsonl"))) == 1, f"trial {trial}"
        assert [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"] == LOCK] == []


def test_an_apply_paused_before_its_lock_changes_nothing_the_other_wrote(aws: MotoServer, sm: Any, tmp_path: Path,
                                                                         env: dict[str, str]) -> None:
    root = write_stack(tmp_path / "stack", aws.url)
    args = ["apply", "--auto-approve", "-C", str(root)]
    hooks = tmp_path / "hooks"
    paused = start_hooked(args, env, cwd=root, hooks=hooks, HOOK_KIND="aws", HOOK_PAUSE_LOCK="1")
    wait_for(hooks / "at-lock", paused)
    code, output = start(args, env, cwd=root).finish()
    assert code == 0 and "Apply complete: 3 applied" in output, output
    (hooks / "go-lock").touch()
    code, output = paused.finish()
    assert lost_race(code, output) and "Nothing to apply." in output, output
    assert versions(sm) == {"payments/db-password": 1, "payments/token-0": 1, "payments/token-1": 1}


def test_a_killed_apply_blocks_the_next_one_at_most_for_its_lease(aws: MotoServer, sm: Any, tmp_path: Path,
                                                                  env: dict[str, str], canary: str,
                                                                  cli: Callable[..., CliResult]) -> None:
    root = write_stack(tmp_path / "stack", aws.url)
    hooks = tmp_path / "hooks"
    proc = start_hooked(["apply", "--auto-approve", "--parallelism", "1", "-C", str(root)], env, cwd=root,
                        hooks=hooks, HOOK_KIND="aws", HOOK_BLOCK_AT="2", CLOUDSYNC_LOCK_LEASE="2s")
    wait_for(hooks / "at-write", proc)
    proc.signal(signal.SIGKILL)
    proc.finish()

    events = audit_events(root / ".cloudsync" / "audit.jsonl")
    applied = [e["address"] for e in events if e["event"] == "change" and e["outcome"] == "applied"]
    assert len(applied) == 1 and versions(sm)[str(applied[0]).removeprefix("aws-prod:")] == 1

    left = tags_of(sm, LOCK)  # the dead apply's lock is still there; its lease (two seconds) runs out soon
    assert int(left[SINCE_TAG]) < int(left[EXPIRES_TAG]) <= time.time() + 3 and "stack payments" in left[HOLDER_TAG]
    waited = cli("apply", "--auto-approve", "--lock-timeout", "1min", "-C", str(root), env=env)
    assert waited.code == 0 and "Apply complete: 2 applied" in waited.stdout, waited.output
    assert "taking over the apply lock" in waited.stderr
    assert_no_canary(canary, waited.output)
    assert versions(sm) == {"payments/db-password": 1, "payments/token-0": 1, "payments/token-1": 1}


def test_a_sigterm_apply_releases_its_lock_and_the_next_runs_at_once(aws: MotoServer, sm: Any, tmp_path: Path,
                                                                      env: dict[str, str],
                                                                      cli: Callable[..., CliResult]) -> None:
    root = write_stack(tmp_path / "stack", aws.url)
    hooks = tmp_path / "hooks"
    proc = start_hooked(["apply", "--auto-approve", "--parallelism", "1", "-C", str(root)], env, cwd=root,
                        hooks=hooks, HOOK_KIND="aws", HOOK_BLOCK_AT="2")
    wait_for(hooks / "at-write", proc)
    proc.signal(signal.SIGTERM)
    wait_for(hooks / "signalled", proc)
    (hooks / "go-write").touch()
    code, output = proc.finish()
    assert code == 1 and "Apply stopped (SIGTERM received): 2 applied, 0 failed, 1 not attempted." in output, output
    assert [s["Name"] for s in sm.list_secrets()["SecretList"] if s["Name"] == LOCK] == []
    again = cli("apply", "--auto-approve", "-C", str(root), env=env)
    assert again.code == 0 and "Apply complete: 1 applied" in again.stdout, again.output


@pytest.fixture
def apply_at(proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             canary: str) -> Callable[[int], tuple[PlanRun, ApplyReport]]:
    """Plan and apply, in process, a stack that talks to moto through the fault proxy,
    as if ``minutes`` later (each rerun is a new plan)."""
    root = tmp_path / "stack"
    root.mkdir()
    (root / "cloudsync.yaml").write_text(stack_yaml(proxy.url, DB_PASSWORD))
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("DB_PASSWORD", canary)

    def run(minutes: int) -> tuple[PlanRun, ApplyReport]:
        stack = load_stack(root)
        with open_session(stack) as session:
            planned = build_plan(session, ["aws-prod"], when=now() + timedelta(minutes=minutes))
            return planned, apply_plan(session, planned, sleep=lambda _s: None)

    return run


def killed_after_the_value_write(apply_at: Callable[[int], tuple[PlanRun, ApplyReport]], proxy: FaultProxy,
                                 monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Apply once, then change the value and stop the next apply after PutSecretValue, before
    the tags that record the value (a server fault on TagResource, where a kill would hit)."""
    assert_applied(apply_at(0)[1])
    monkeypatch.setenv("DB_PASSWORD", value)
    proxy.fail("TagResource", "AccessDeniedException", message="not allowed")
    _, report = apply_at(1)
    assert not report.ok and "PutSecretValue" in proxy.seen


def test_a_rerun_after_a_kill_between_value_and_metadata_writes_no_second_version(
        apply_at: Callable[[int], tuple[PlanRun, ApplyReport]], proxy: FaultProxy, sm: Any,
        monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    killed_after_the_value_write(apply_at, proxy, monkeypatch, canary + "-rotated")
    assert versions(sm) == {"payments/db-password": 2}

    run, report = apply_at(2)  # the rerun, a later plan
    assert changes(run) == [("aws-prod:payments/db-password", "update", ("value",))]
    assert_applied(report)
    assert versions(sm) == {"payments/db-password": 2}  # the version written before the kill, recognised
    assert sm.get_secret_value(SecretId="payments/db-password")["SecretString"] == canary + "-rotated"
    assert changes(apply_at(3)[0]) == []

    # The same value written again later (after the metadata moved on) is a new version, made current.
    monkeypatch.setenv("DB_PASSWORD", canary)
    assert_applied(apply_at(4)[1])
    assert sm.get_secret_value(SecretId="payments/db-password")["SecretString"] == canary
    assert versions(sm) == {"payments/db-password": 3}


def test_a_replayed_token_whose_version_is_no_longer_current_writes_it_anew(
        apply_at: Callable[[int], tuple[PlanRun, ApplyReport]], proxy: FaultProxy, sm: Any,
        monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    killed_after_the_value_write(apply_at, proxy, monkeypatch, canary + "-2")
    sm.put_secret_value(SecretId="payments/db-password", SecretString="someone else's")  # then an out-of-band write
    assert_applied(apply_at(2)[1])
    assert sm.get_secret_value(SecretId="payments/db-password")["SecretString"] == canary + "-2"

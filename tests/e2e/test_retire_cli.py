"""Retiring old versions through the CLI on the local provider: the saved plan carries the
retirement, apply performs it, and `cloudsync access --versions` shows what stays live.

Values are generated (never shown); the values someone else writes are canaries, searched in
every output and file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cloudsync.providers.local import LocalStore
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary, files_containing

PLAN_KEY = "k" * 40
NAME = "shop/api-token"


def _stack(length: int, grace: str) -> str:
    return f"""\
version: 1
stack: shop
targets:
  local: {{provider: local}}
secrets:
  - name: {NAME}
    targets: [local]
    labels: {{owner: team-shop}}
    value: {{generate: {{length: {length}}}}}
    rotation: {{every: 30d, grace: {grace}}}
"""


def _enabled(stack: Path) -> dict[str, bool]:
    store = LocalStore(stack / ".cloudsync" / "local.db")
    try:
        return {v.version: v.enabled for v in store.versions(NAME)}
    finally:
        store.close()


def test_a_saved_plan_with_grace_0_retires_the_old_version_when_applied(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], tmp_path: Path, canary: str) -> None:
    env = {"CLOUDSYNC_PLAN_KEY": PLAN_KEY}
    stack = write_stack(_stack(32, "0"))
    assert cli("apply", "--auto-approve", "-C", str(stack), env=env).code == 0
    write_stack(_stack(40, "0"))
    shown = cli("plan", "-C", str(stack), env=env)
    assert shown.code == 0 and "retire: previous version 1 once the new value is written (grace 0)" in shown.stdout
    as_json = json.loads(cli("plan", "-C", str(stack), "--format", "json", env=env).stdout)
    (change,) = as_json["changes"]
    assert change["reasons"] == ["value", "retire"] and [r["version"] for r in change["retire"]] == ["1"]

    plan_file = tmp_path / "plan.json"
    assert cli("plan", "-C", str(stack), "--out", str(plan_file), env=env).code == 0
    saved = json.loads(plan_file.read_text())["body"]["changes"][0]
    assert saved["retire"][0]["version"] == "1" and saved["value"]["retire_after_seconds"] == 0
    applied = cli("apply", str(plan_file), "-C", str(stack), env=env)
    assert applied.code == 0, applied.stderr
    assert _enabled(stack) == {"2": True, "1": False}
    assert cli("plan", "-C", str(stack), "--detailed-exitcode", env=env).code == 0

    # Someone else writes two values; cloudsync writes its own back and retires only its own version.
    store = LocalStore(stack / ".cloudsync" / "local.db")
    try:
        store.put_value(NAME, SecretValue(canary + "-a"))
        store.put_value(NAME, SecretValue(canary + "-b"))
    finally:
        store.close()
    assert cli("apply", "--auto-approve", "-C", str(stack), env=env).code == 0
    assert _enabled(stack) == {"5": True, "4": True, "3": True, "2": False, "1": False}

    audit = cli("access", "--versions", "-C", str(stack), env=env)
    assert audit.code == 0, audit.stderr
    assert "2 old versions still live" in audit.stdout and "4 (0d old, PAST GRACE)" in audit.stdout
    assert "CS016" in audit.stderr
    report = json.loads(cli("access", "--versions", "-C", str(stack), "--format", "json", env=env).stdout)
    (item,) = report["secrets"]
    assert [v["version"] for v in item["old_versions"]] == ["4", "3"]
    # Superseded minutes ago, with a grace of 0: both are past it, and neither is cloudsync's to retire.
    assert all(v["past_grace"] for v in item["old_versions"])
    assert any("CS016" in d["message"] for d in report["diagnostics"])
    without = json.loads(cli("access", "-C", str(stack), "--format", "json", env=env).stdout)
    assert without["secrets"][0]["old_versions"] is None  # not listed unless asked
    for result in (shown, applied, audit):
        assert_no_canary(canary, result.stdout, result.stderr)
    assert files_containing(tmp_path, canary) == []  # the store holds it encrypted only

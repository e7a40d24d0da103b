"""What `plan` and `drift` print, as a user reads them: wrapped at spaces, coloured policy lines,
no "No changes." above errors, and drift that says who granted a reader and who deleted a secret."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.plan.render import CHANGES_OPEN, render_markdown
from cloudsync.providers.local import LocalStore
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary
from tests.e2e.test_plan_json_docs import HEADER  # one small stack, planned by both

STACK = HEADER + """\
  - name: shop/db
    description: short
    targets: [local]
    value: {env: SHOP_DB}
    readers: [api]
  - name: shop/gone
    targets: [local]
    value: {generate: {length: 40}}
"""
GONE = """\
  - name: shop/gone
    targets: [local]
    value: {generate: {length: 40}}
"""
LONG = ("the password of the primary payments database, rotated by the platform team every thirty days, "
        "readable by the api service only")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _applied(cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> Path:
    stack = write_stack(STACK)
    result = cli("apply", "-C", str(stack), "--auto-approve", env={"SHOP_DB": canary})
    assert result.code == 0, result.output
    return stack


def test_detail_lines_wrap_at_spaces_and_policy_lines_are_coloured(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = _applied(cli, write_stack, canary)
    (stack / "cloudsync.yaml").write_text(STACK.replace("description: short", f"description: {LONG}")
                                          .replace("value: {generate: {length: 40}}", "value: {generate: {length: 8}}"))
    result = cli("plan", "-C", str(stack), env={"SHOP_DB": canary, "COLUMNS": "60", "FORCE_COLOR": "1", "NO_COLOR": ""})
    assert_no_canary(canary, result.stdout, result.stderr)
    plain = ANSI.sub("", result.stdout)
    lines = plain.splitlines()
    details = [line for line in lines if line.startswith("        ")]
    assert len(details) > 3 and max(len(line) for line in details) <= 60
    shown = " ".join(line.strip() for line in details)
    assert f'description: "short" → "{LONG}"' in shown  # every word whole: no cut mid-word
    error_line = next(line for line in result.stdout.splitlines() if "error CS012" in line)
    assert error_line.startswith("\x1b[31m")  # red, like the diagnostics on stderr
    assert next(line for line in result.stdout.splitlines() if "Policy check FAILED" in line).startswith("\x1b[1;31m")


def test_no_changes_line_is_not_printed_when_every_secret_was_refused(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], tmp_path: Path) -> None:
    stack = write_stack(STACK.split("  - name: shop/gone")[0].replace("readers: [api]", ""))
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.put_value("shop/db", SecretValue("not ours"))  # exists, not managed by cloudsync: refused
    store.close()
    result = cli("plan", "-C", str(stack), env={"SHOP_DB": "whatever-value"})
    assert result.code == 1 and "cloudsync never changes a secret it does not own" in result.stderr
    assert "No changes" not in result.stdout and "The targets match" not in result.stdout
    assert "Nothing can be planned until 1 error (below) is fixed." in result.stdout
    md = cli("plan", "-C", str(stack), "--format", "markdown", env={"SHOP_DB": "whatever-value"})
    assert "Apply will be refused: 1 plan error" in md.stdout and "\nNo changes.\n" not in md.stdout


def test_drift_says_an_extra_reader_was_granted_outside_and_knows_its_own_deletes(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = _applied(cli, write_stack, canary)
    declared = (stack / "cloudsync.yaml").read_text()
    (stack / "cloudsync.yaml").write_text(declared.replace(GONE, ""))
    assert cli("apply", "-C", str(stack), "--auto-approve", env={"SHOP_DB": canary}).code == 0  # cloudsync deletes it
    (stack / "cloudsync.yaml").write_text(declared)  # ... and the pull request is reverted
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.update("shop/db", readers=["api", "intruder"])  # granted outside cloudsync
    store.close()
    result = cli("drift", "-C", str(stack), "--format", "json")
    assert_no_canary(canary, result.output)
    details = {(d["address"], d["kind"]): d["detail"] for d in json.loads(result.stdout)["drifted"]}
    assert details[("local:shop/db", "access")] == "extra reader granted outside cloudsync: intruder (apply removes it)"
    gone = details[("local:shop/gone", "missing")]
    assert gone.startswith("deleted by cloudsync (apply ") and gone.endswith("declared again since: apply restores it")
    assert "outside" not in gone
    text = cli("drift", "-C", str(stack)).stdout
    assert "readers: -intruder" not in text and "extra reader granted outside cloudsync: intruder" in text


def test_drift_still_names_a_delete_made_outside_cloudsync(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = _applied(cli, write_stack, canary)
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.update("shop/gone", deleted_at=datetime.now(UTC))  # someone deleted it in the console
    store.close()
    result = cli("drift", "-C", str(stack), "--format", "json")
    details = {(d["address"], d["kind"]): d["detail"] for d in json.loads(result.stdout)["drifted"]}
    assert details[("local:shop/gone", "missing")].startswith("deleted outside cloudsync")


def _changes(count: int) -> Plan:
    changes = [Change(address=f"local:shop/s{i}", target="local", provider="local", secret=f"shop/s{i}",
                      remote_name=f"shop/s{i}", action=Action.UPDATE, reasons=(Reason.LABELS,),
                      details=(f'labels: env: "dev" → "s{i}"',)) for i in range(count)]
    return Plan(stack="shop", changes=changes, created_at=datetime.now(UTC), targets=["local"])


def test_changes_are_folded_only_when_there_are_more_than_the_threshold() -> None:
    few, many = render_markdown(_changes(CHANGES_OPEN)), render_markdown(_changes(CHANGES_OPEN + 1))
    assert f"**Changes ({CHANGES_OPEN})**" in few and "<details>" not in few
    assert f"<details><summary>Changes ({CHANGES_OPEN + 1})</summary>" in many

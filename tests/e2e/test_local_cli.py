"""The installed ``cloudsync`` command against the local provider, as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.providers.base import ProviderContext
from cloudsync.providers.local import LocalProvider, LocalStore
from cloudsync.providers.local_rules import LocalTarget
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary, files_containing

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
principals:
  api: {}
  worker: {}
defaults:
  labels: {owner: team-shop}
  rotation: 90d
secrets:
  - name: shop/db-password
    description: database password
    targets: [local]
    labels: {env: dev}
    value: {env: SHOP_DB_PASSWORD}
    readers: [api]
  - name: shop/session-key
    targets: [local]
    value: {generate: {length: 40}}
    readers: [api, worker]
"""


@pytest.fixture
def stack(write_stack: Callable[..., Path]) -> Path:
    return write_stack(STACK)


def run_all(cli: Callable[..., CliResult], stack: Path, canary: str, *args: str, **kw: object) -> CliResult:
    env = {"SHOP_DB_PASSWORD": canary, **kw.pop("env", {})}  # type: ignore[dict-item]
    result = cli(*args, "-C", str(stack), env=env, **kw)
    assert_no_canary(canary, result.stdout, result.stderr)
    return result


def plan_json(cli: Callable[..., CliResult], stack: Path, canary: str, *extra: str,
              env: dict[str, str] | None = None) -> dict[str, object]:
    result = run_all(cli, stack, canary, "plan", "--format", "json", *extra, env=env or {})
    assert result.code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def changes(data: dict[str, object]) -> list[tuple[str, str, list[str]]]:
    return [(c["address"], c["action"], c["reasons"]) for c in data["changes"]]  # type: ignore[attr-defined, index]


def test_first_apply_creates_everything_then_the_plan_is_empty(
        cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    first = run_all(cli, stack, canary, "plan", "--detailed-exitcode")
    assert first.code == 2, first.output
    assert "+ create  local:shop/db-password" in first.stdout
    assert "Plan: 2 to create, 0 to update, 0 to delete, 0 to restore, 0 unchanged." in first.stdout

    applied = run_all(cli, stack, canary, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "Apply complete: 2 applied, 0 failed, 0 not attempted." in applied.stdout

    again = run_all(cli, stack, canary, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.stdout

    store = LocalStore(stack / ".cloudsync" / "local.db")
    assert store.get_value("shop/db-password").reveal_text() == canary
    assert len(store.get_value("shop/session-key")) == 40
    assert files_containing(stack, canary) == []  # the store is encrypted at rest; nothing else holds it


def test_each_kind_of_edit_shows_exactly_that_update(
        cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0

    new_value = canary + "-rotated"
    data = plan_json(cli, stack, canary, env={"SHOP_DB_PASSWORD": new_value})
    assert changes(data) == [("local:shop/db-password", "update", ["value"])]

    text = (stack / "cloudsync.yaml").read_text()
    (stack / "cloudsync.yaml").write_text(text.replace("labels: {env: dev}", "labels: {env: staging}"))
    data = plan_json(cli, stack, canary)
    assert changes(data) == [("local:shop/db-password", "update", ["labels"])]
    assert data["changes"][0]["details"] == ["labels: ~env: dev -> staging"]  # type: ignore[index]

    text = (stack / "cloudsync.yaml").read_text()
    (stack / "cloudsync.yaml").write_text(text.replace("readers: [api, worker]", "readers: [api]"))
    data = plan_json(cli, stack, canary)
    assert changes(data) == [("local:shop/db-password", "update", ["labels"]),
                             ("local:shop/session-key", "update", ["access"])]


def test_removing_a_declaration_plans_a_delete_and_apply_soft_deletes(
        cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0
    text = (stack / "cloudsync.yaml").read_text()
    (stack / "cloudsync.yaml").write_text(text.split("  - name: shop/session-key")[0])
    data = plan_json(cli, stack, canary)
    assert changes(data) == [("local:shop/session-key", "delete", [])]
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0

    # Declared again: the soft-deleted secret is restored, not re-created (which would fail).
    (stack / "cloudsync.yaml").write_text(text)
    data = plan_json(cli, stack, canary)
    assert changes(data) == [("local:shop/session-key", "restore", [])]
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0
    assert plan_json(cli, stack, canary)["changes"] == []


def test_out_of_band_changes_are_planned_back(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.put_value("shop/db-password", SecretValue("changed-by-hand"))
    store.update("shop/session-key", readers=["api", "worker", "intruder"])
    data = plan_json(cli, stack, canary)
    assert changes(data) == [("local:shop/db-password", "update", ["value"]),
                             ("local:shop/session-key", "update", ["access"])]
    assert "changed outside cloudsync" in data["changes"][0]["details"][0]  # type: ignore[index]
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0
    assert store.get_value("shop/db-password").reveal_text() == canary
    assert plan_json(cli, stack, canary)["changes"] == []


def test_unowned_secret_is_never_touched(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.put_value("shop/db-password", SecretValue("someone-elses"), labels={"team": "other"})
    result = run_all(cli, stack, canary, "plan")
    assert result.code == 1
    assert "not managed by cloudsync" in result.stderr and "cloudsync.yaml:12" in result.stderr
    applied = run_all(cli, stack, canary, "apply", "--auto-approve")
    assert applied.code == 1 and "nothing was applied" in applied.stderr
    assert store.get_value("shop/db-password").reveal_text() == "someone-elses"


def test_apply_without_a_terminal_refuses(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    result = run_all(cli, stack, canary, "apply")
    assert result.code == 1 and "refusing to apply" in result.stderr and "--auto-approve" in result.stderr
    assert not (stack / ".cloudsync" / "audit.jsonl").exists()
    assert plan_json(cli, stack, canary)["summary"]["create"] == 2  # type: ignore[index]


def test_saved_plan_round_trip_and_refusals(cli: Callable[..., CliResult], stack: Path, canary: str,
                                            tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    key = {"CLOUDSYNC_PLAN_KEY": "k" * 40}
    saved = run_all(cli, stack, canary, "plan", "--out", str(plan_file), env=key)
    assert saved.code == 0, saved.output
    assert canary not in plan_file.read_text()

    shown = run_all(cli, stack, canary, "show", str(plan_file), env=key)
    assert shown.code == 0 and "+ create  local:shop/db-password" in shown.stdout

    unknown = run_all(cli, stack, canary, "apply", str(plan_file), env={"CLOUDSYNC_PLAN_KEY": "x" * 40})
    assert unknown.code == 1 and "signed by an unknown key" in unknown.stderr

    tampered = tmp_path / "tampered.json"
    tampered.write_text(plan_file.read_text().replace('"action": "create"', '"action": "delete"', 1))
    refused = run_all(cli, stack, canary, "apply", str(tampered), env=key)
    assert refused.code == 1 and "modified since it was signed" in refused.stderr

    stale_value = run_all(cli, stack, canary, "apply", str(plan_file),
                          env={**key, "SHOP_DB_PASSWORD": canary + "-other"})
    assert stale_value.code == 1 and "desired value changed" in stale_value.stderr

    applied = run_all(cli, stack, canary, "apply", str(plan_file), env=key)
    assert applied.code == 0, applied.output
    again = run_all(cli, stack, canary, "apply", str(plan_file), env=key)
    assert again.code == 1 and "stale" in again.stderr  # the targets moved on: the plan no longer applies


def test_plan_file_refused_for_another_stack(cli: Callable[..., CliResult], stack: Path, canary: str,
                                             tmp_path: Path, write_stack: Callable[..., Path]) -> None:
    plan_file = tmp_path / "plan.json"
    key = {"CLOUDSYNC_PLAN_KEY": "k" * 40}
    assert run_all(cli, stack, canary, "plan", "--out", str(plan_file), env=key).code == 0
    other = write_stack(STACK.replace("stack: shop", "stack: other"), root=tmp_path / "other")
    result = run_all(cli, other, canary, "apply", str(plan_file), env=key)
    assert result.code == 1 and "plan for stack 'shop'" in result.stderr


def test_invalid_files_exit_1_with_file_and_line(cli: Callable[..., CliResult],
                                                 write_stack: Callable[..., Path]) -> None:
    folder = write_stack(STACK.replace("readers: [api]", "readers: [apii]"))
    for command in ("validate", "plan"):
        result = cli(command, "-C", str(folder))
        assert result.code == 1
        assert result.stderr.strip().splitlines()[0].endswith(
            "cloudsync.yaml:17:15: error: unknown principal 'apii' (hint: did you mean 'api'?)")
        assert "Traceback" not in result.output


def test_missing_env_var_is_a_diagnostic(cli: Callable[..., CliResult], stack: Path) -> None:
    result = cli("plan", "-C", str(stack))
    assert result.code == 1
    assert "environment variable SHOP_DB_PASSWORD is not set" in result.stderr and "cloudsync.yaml" in result.stderr


def test_metadata_only_plan_needs_no_values(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    assert run_all(cli, stack, canary, "apply", "--auto-approve").code == 0
    result = cli("plan", "-C", str(stack), "--metadata-only", "--format", "json")  # no SHOP_DB_PASSWORD at all
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["changes"] == []


def test_lock_held_by_another_apply(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    config = LocalTarget(provider="local")
    holder = LocalProvider("local", config, ProviderContext(stack="shop", root=stack))
    with holder.lock("test holder"):
        result = run_all(cli, stack, canary, "apply", "--auto-approve")
    assert result.code == 1 and "locked by another apply (test holder" in result.stderr
    assert plan_json(cli, stack, canary)["summary"]["create"] == 2  # type: ignore[index]


def test_audit_record_per_apply(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    assert run_all(cli, stack, canary, "apply", "--auto-approve", env={"CLOUDSYNC_ACTOR": "ci-bot"}).code == 0
    events = [json.loads(line) for line in (stack / ".cloudsync" / "audit.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["apply-start", *["change-start", "change"] * 2, "apply-end"]
    assert len({e["apply"] for e in events}) == 1  # one apply's events share its id
    record = events[-1]  # the summary line
    assert record["actor"] == "ci-bot" and record["stack"] == "shop" and len(record["plan_digest"]) == 64
    assert record["result"] == "complete" and record["summary"] == {"applied": 2, "failed": 0, "not-attempted": 0}
    assert sorted((c["address"], c["outcome"]) for c in record["changes"]) == [
        ("local:shop/db-password", "applied"), ("local:shop/session-key", "applied")]
    assert sorted((e["address"], e["outcome"]) for e in events if e["event"] == "change") == [
        ("local:shop/db-password", "applied"), ("local:shop/session-key", "applied")]


def test_markdown_and_validate_and_schema(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    md = run_all(cli, stack, canary, "plan", "--format", "markdown")
    assert md.code == 0 and md.stdout.startswith("<!-- cloudsync:plan stack=shop -->")
    assert "| 2 | 0 | 0 | 0 | 0 |" in md.stdout
    valid = cli("validate", "-C", str(stack), "--format", "json")
    assert valid.code == 0 and json.loads(valid.stdout)["secrets"] == 2
    schema = json.loads(cli("schema").stdout)
    assert "SecretDecl" in schema["definitions"] and schema["properties"]["stack"]["pattern"]


def test_targets_json_for_a_ci_matrix(cli: Callable[..., CliResult], stack: Path) -> None:
    result = cli("targets", "-C", str(stack), "--format", "json")
    assert json.loads(result.stdout) == {"stack": "shop",
                                         "include": [{"target": "local", "provider": "local", "secrets": 2}]}


def _run_in_terminal(args: list[str], cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout, answering its question."""
    import os
    import pty
    import subprocess

    from tests.conftest import CLI

    primary, secondary = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    full_env.update(env)
    proc = subprocess.Popen([CLI, *args], cwd=cwd, env=full_env, stdin=secondary, stdout=secondary,
                            stderr=secondary, close_fds=True)
    os.close(secondary)
    output = b""
    answered = False
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if not answered and b"Only 'yes' is accepted" in output:
            os.write(primary, answer.encode() + b"\n")
            answered = True
    os.close(primary)
    return proc.wait(60), output.decode(errors="replace")


def test_apply_asks_on_a_terminal_and_only_yes_applies(stack: Path, canary: str) -> None:
    env = {"SHOP_DB_PASSWORD": canary}
    code, output = _run_in_terminal(["apply", "-C", str(stack)], stack, env, "no")
    assert code == 1 and "Apply cancelled; nothing was changed." in output
    assert canary not in output
    assert not (stack / ".cloudsync" / "audit.jsonl").exists()
    code, output = _run_in_terminal(["apply", "-C", str(stack)], stack, env, "yes")
    assert code == 0 and "Apply complete: 2 applied" in output
    assert canary not in output


def test_verbose_logs_never_hold_a_value(cli: Callable[..., CliResult], stack: Path, canary: str) -> None:
    result = run_all(cli, stack, canary, "--verbose", "apply", "--auto-approve")
    assert result.code == 0 and "cloudsync: DEBUG:" in result.stderr
    result = run_all(cli, stack, canary, "plan", env={"CLOUDSYNC_LOG": "debug",
                                                      "SHOP_DB_PASSWORD": canary + "-changed"})
    assert "DEBUG" in result.stderr and canary not in result.output

"""Drift of every kind from out-of-band edits, ignore entries, adoption, bounded markdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.drift import DriftKind, classify
from cloudsync.drift_render import render_drift_markdown
from cloudsync.plan.comment import GITHUB_COMMENT_LIMIT
from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.plan.render import render_markdown
from cloudsync.providers.local import LocalStore
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary, files_containing

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
principals:
  api: {}
defaults:
  labels: {owner: team-shop}
  rotation: 60d
secrets:
  - name: shop/a
    targets: [local]
    value: {env: SHOP_A}
    readers: [api]
  - name: shop/b
    targets: [local]
    labels: {env: dev}
    value: {generate: {length: 32}}
  - name: shop/c
    targets: [local]
    value: {generate: {length: 32}}
  - name: shop/d
    targets: [local]
    value: {generate: {length: 32}}
"""


@pytest.fixture
def applied(cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> Path:
    stack = write_stack(STACK)
    result = cli("apply", "-C", str(stack), "--auto-approve", env={"SHOP_A": canary})
    assert result.code == 0, result.output
    return stack


def drift_json(cli: Callable[..., CliResult], stack: Path, canary: str) -> tuple[int, dict[str, object]]:
    result = cli("drift", "-C", str(stack), "--format", "json")  # no SHOP_A: drift reads no value
    assert_no_canary(canary, result.output)
    assert result.code in (0, 2), result.output
    return result.code, json.loads(result.stdout)


def kinds(data: dict[str, object]) -> set[tuple[str, str]]:
    return {(d["address"], d["kind"]) for d in data["drifted"]}  # type: ignore[attr-defined, index]


def test_no_drift_right_after_apply(cli: Callable[..., CliResult], applied: Path, canary: str) -> None:
    code, data = drift_json(cli, applied, canary)
    assert code == 0 and data["drifted"] == [] and data["format_version"] == 1


def test_every_kind_of_drift(cli: Callable[..., CliResult], applied: Path, canary: str) -> None:
    store = LocalStore(applied / ".cloudsync" / "local.db")
    store.put_value("shop/a", SecretValue("edited-by-hand"))  # value
    row = {r["name"]: r for r in store.rows()}
    labels = json.loads(row["shop/b"]["labels"])
    store.update("shop/b", labels={**labels, "env": "prod"})  # metadata
    store.update("shop/a", readers=["api", "someone"])  # access
    store.purge("shop/c")  # missing
    store.put_value("shop/stray", SecretValue("x"))  # unmanaged, inside the name scope
    store.put_value("elsewhere/x", SecretValue("x"))  # unmanaged, but outside the scope
    text = (applied / "cloudsync.yaml").read_text()
    (applied / "cloudsync.yaml").write_text(text.split("  - name: shop/d")[0])  # orphan

    code, data = drift_json(cli, applied, canary)
    assert code == 2
    assert kinds(data) == {("local:shop/a", "value"), ("local:shop/a", "access"), ("local:shop/b", "metadata"),
                           ("local:shop/c", "missing"), ("local:shop/d", "orphan"), ("local:shop/stray", "unmanaged")}
    details = {(d["address"], d["kind"]): d["detail"] for d in data["drifted"]}  # type: ignore[attr-defined]
    assert details[("local:shop/b", "metadata")] == 'labels: env: "prod" → "dev"'
    assert details[("local:shop/a", "access")] == "extra reader granted outside cloudsync: someone (apply removes it)"
    assert data["summary"] == {"value": 1, "metadata": 1, "access": 1, "missing": 1, "orphan": 1,  # type: ignore[comparison-overlap]
                               "unmanaged": 1, "inherited": 0, "total": 6, "ignored": 0, "checked": 4}


def test_ignore_entries_apply_until_they_expire(cli: Callable[..., CliResult], applied: Path, canary: str) -> None:
    store = LocalStore(applied / ".cloudsync" / "local.db")
    store.put_value("shop/stray", SecretValue("x"))
    store.put_value("shop/legacy", SecretValue("x"))
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    (applied / ".cloudsyncignore").write_text(f"""\
ignore:
  - address: "local:shop/stray"
    kinds: [unmanaged]
    reason: created by the vendor's installer, ticket OPS-1
    expires: {tomorrow}
  - address: "local:shop/leg*"
    reason: migration in progress
    expires: 2020-01-01
""")
    result = cli("drift", "-C", str(applied), "--format", "json")
    data = json.loads(result.stdout)
    assert result.code == 2
    assert kinds(data) == {("local:shop/legacy", "unmanaged")}
    assert [d["address"] for d in data["ignored"]] == ["local:shop/stray"]
    assert "expired on 2020-01-01 and no longer applies" in result.stderr


def test_a_bad_ignore_file_is_a_diagnostic(cli: Callable[..., CliResult], applied: Path) -> None:
    (applied / ".cloudsyncignore").write_text("ignore:\n  - address: x\n    reason: r\n")
    result = cli("drift", "-C", str(applied))
    assert result.code == 1 and ".cloudsyncignore:2:5: error: missing required key 'expires'" in result.stderr


def test_import_and_adopt_leave_values_and_versions_untouched(cli: Callable[..., CliResult], applied: Path,
                                                              canary: str) -> None:
    store = LocalStore(applied / ".cloudsync" / "local.db")
    store.put_value("legacy/api-key", SecretValue(canary), labels={"team": "core"})
    store.update("legacy/api-key", readers=["api", "ops-bot"], description="vendor key")
    before = {r["name"]: dict(r) for r in store.rows()}["legacy/api-key"]

    out = applied / "secrets" / "imported.yaml"
    result = cli("import", "-C", str(applied), "--target", "local", "--adopt", "--out", str(out),
                 env={"SHOP_A": canary})
    assert result.code == 0, result.output
    text = out.read_text()
    assert canary not in text and "adopt: true" in text and "name: legacy/api-key" in text
    assert "imported-local-1:\n#       local: ops-bot" in text  # an unknown reader becomes a principal to add
    config = (applied / "cloudsync.yaml").read_text()
    (applied / "cloudsync.yaml").write_text(config.replace("principals:\n", "principals:\n  imported-local-1: {local: ops-bot}\n"))

    plan = cli("plan", "-C", str(applied), "--format", "json", env={"SHOP_A": canary})
    changes = [(c["address"], c["action"], c["reasons"]) for c in json.loads(plan.stdout)["changes"]]
    assert changes == [("local:legacy/api-key", "update", ["labels", "ownership"])]  # + the default owner label
    assert cli("apply", "-C", str(applied), "--auto-approve", env={"SHOP_A": canary}).code == 0

    after = {r["name"]: dict(r) for r in store.rows()}["legacy/api-key"]
    assert after["current_version"] == before["current_version"] == 1
    assert store.get_value("legacy/api-key").reveal_text() == canary
    assert json.loads(after["labels"])["cloudsync-stack"] == "shop"
    assert json.loads(after["readers"]) == ["api", "ops-bot"]
    code, data = drift_json(cli, applied, canary)
    assert code == 0, data
    assert files_containing(applied, canary) == []


def test_markdown_stays_under_the_comment_limit_for_10000_drifted_secrets(
        write_stack: Callable[..., Path]) -> None:
    stack = load_stack(write_stack(STACK))
    changes = [Change(address=f"local:team/secret-{i:05d}-with-a-long-name", target="local", provider="local",
                      secret=f"team/secret-{i:05d}-with-a-long-name", remote_name=f"team/secret-{i:05d}",
                      action=[Action.CREATE, Action.UPDATE, Action.DELETE][i % 3],
                      reasons=(Reason.VALUE, Reason.LABELS) if i % 3 == 1 else (),
                      details=("value: changed outside cloudsync (version 3 is current, cloudsync wrote 2)",
                               "labels: ~env: dev -> prod") if i % 3 == 1 else ())
               for i in range(10_000)]
    plan = Plan(stack="shop", changes=changes, created_at=datetime.now(UTC), targets=["local"])
    report = classify(stack, plan, {"local": {}}, set(), today=date.today())
    assert len(report.drifted) == 10_000 + 3333  # the 3,333 updates drift twice: value and metadata

    text = render_drift_markdown(report)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.count("more not listed here") >= 1
    assert "| 3333 | 3333 | 0 | 3334 | 3333 | 0 | 0 | 0 | 10000 |" in text

    violations = [{"policy": "CS101", "severity": "error", "address": c.address, "message": "wildcard reader",
                   "file": "secrets/x.yaml", "line": i} for i, c in enumerate(changes)]
    md = render_markdown(plan, violations)
    assert len(md) <= GITHUB_COMMENT_LIMIT
    assert "3334 to create, 3333 to update, 3333 to delete, 0 unchanged · **policy**: 10000 errors" in md
    assert "[`secrets/x.yaml:1`](secrets/x.yaml#L1)" in md


def test_drift_kinds_are_the_contract() -> None:
    assert [k.value for k in DriftKind] == ["value", "metadata", "access", "missing", "orphan", "unmanaged",
                                             "inherited"]


def test_output_is_written_as_is_without_emoji_or_markup(cli: Callable[..., CliResult], applied: Path) -> None:
    store = LocalStore(applied / ".cloudsync" / "local.db")
    store.put_value("legacy/x", SecretValue("x"))
    store.update("legacy/x", description="rotate via :warning: [bold]runbook[/bold]")
    result = cli("import", "-C", str(applied), "--target", "local")
    assert "description: 'rotate via :warning: [bold]runbook[/bold]'" in result.stdout

"""A validly signed plan that someone edited still cannot touch a secret the stack does not own.

The plan key signs a plan file; whoever holds it can write any plan. Apply therefore checks
ownership against what the target holds *now*, in the provider base class, for every
provider: an edited plan that deletes or takes over an unowned secret, or another stack's,
is refused change by change, and the secrets stay as they were.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudsync.plan.planfile import _canonical, _key_id
from cloudsync.providers.local import LocalStore
from cloudsync.values.secret import SecretValue
from tests.conftest import CliResult, assert_no_canary

PLAN_KEY = "k" * 40
STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
defaults:
  labels: {owner: team-shop}
  rotation: 90d
secrets:
  - name: shop/db-password
    targets: [local]
    labels: {env: dev}
    value: {env: SHOP_DB_PASSWORD}
"""
UNOWNED = "legacy/unowned"
FOREIGN = "billing/api-key"


def _resign(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a plan file's body and sign it again with the plan key, as its holder could."""
    signed = json.loads(path.read_text())
    edit(signed["body"])
    key = PLAN_KEY.encode()
    signed["signature"] = {"alg": "hmac-sha256", "key_id": _key_id(key),
                           "value": hmac.new(key, _canonical(signed["body"]), hashlib.sha256).hexdigest()}
    path.write_text(json.dumps(signed))


def _change(name: str, action: str, reasons: list[str], template: dict[str, Any]) -> dict[str, Any]:
    after = None if action == "delete" else {**template["after"], "name": name}
    return {"address": f"local:{name}", "target": "local", "provider": "local", "secret": name, "remote_name": name,
            "action": action, "reasons": reasons, "details": [], "after": after}


def test_an_edited_and_resigned_plan_cannot_change_secrets_the_stack_does_not_own(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], tmp_path: Path, canary: str) -> None:
    stack = write_stack(STACK)
    env = {"SHOP_DB_PASSWORD": canary, "CLOUDSYNC_PLAN_KEY": PLAN_KEY}
    assert cli("apply", "--auto-approve", "-C", str(stack), env=env).code == 0
    store = LocalStore(stack / ".cloudsync" / "local.db")
    store.put_value(UNOWNED, SecretValue("theirs-1"), labels={"team": "legacy"})
    store.put_value(FOREIGN, SecretValue("theirs-2"), labels={"managed-by": "cloudsync", "cloudsync-stack": "billing"})
    (stack / "cloudsync.yaml").write_text(STACK.replace("env: dev", "env: test"))
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--out", str(plan_file), "-C", str(stack), env=env).code == 0

    def add_deletes(body: dict[str, Any]) -> None:
        (update,) = body["changes"]
        body["changes"] += [_change(UNOWNED, "delete", [], update), _change(FOREIGN, "delete", [], update)]

    _resign(plan_file, add_deletes)
    applied = cli("apply", str(plan_file), "-C", str(stack), env=env)
    assert_no_canary(canary, applied.stdout, applied.stderr)
    assert applied.code == 1, applied.output
    assert "1 applied, 2 failed" in applied.stdout
    lines = applied.stderr.splitlines()
    for name, why in ((UNOWNED, "is not managed by cloudsync"), (FOREIGN, "is owned by stack 'billing'")):
        error = lines[lines.index(f"  FAILED  delete  local:{name}") + 1]  # the failure, under its change
        assert error.startswith("error: target local (") and f"delete of {name} failed (conflict): " in error, error
        assert f"{name} {why}" in error, error

    # Taking another stack's secret by an update: refused too, and the deletes after it never start.
    (stack / "cloudsync.yaml").write_text(STACK.replace("env: dev", "env: staging"))
    assert cli("plan", "--out", str(plan_file), "-C", str(stack), env=env).code == 0

    def add_takeover(body: dict[str, Any]) -> None:
        (update,) = body["changes"]
        body["changes"] += [_change(FOREIGN, "update", ["labels", "ownership"], update),
                            _change(UNOWNED, "delete", [], update), _change(FOREIGN, "delete", [], update)]

    _resign(plan_file, add_takeover)
    taken = cli("apply", str(plan_file), "-C", str(stack), env=env)
    assert taken.code == 1, taken.output
    assert "1 applied, 1 failed, 2 not attempted" in taken.stdout
    lines = taken.stderr.splitlines()
    error = lines[lines.index(f"  FAILED  update  local:{FOREIGN}") + 1]
    assert f"update of {FOREIGN} failed (conflict): {FOREIGN} is owned by stack 'billing'" in error, error
    assert store.get_value(UNOWNED) == SecretValue("theirs-1")  # still there, not soft-deleted
    assert store.get_value(FOREIGN) == SecretValue("theirs-2")
    rows = {row["name"]: json.loads(row["labels"]) for row in store.rows()}
    assert rows[FOREIGN]["cloudsync-stack"] == "billing" and rows[UNOWNED] == {"team": "legacy"}
    assert rows["shop/db-password"]["env"] == "staging"  # the changes the plan job made are applied

"""The Conftest/OPA example in docs/plan-json.md uses only paths a real plan JSON has.

No OPA or Conftest build is available offline, so the Rego is not run: every ``change.…``
and ``input.…`` path it reads is checked against the plan JSON of a real stack planned by
the installed ``cloudsync`` (a create, an update and a delete), so the example cannot drift
from the format. Label keys are the user's own: a path stops being checked below ``labels``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, assert_no_canary

DOC = Path(__file__).resolve().parents[2] / "docs" / "plan-json.md"

HEADER = """\
version: 1
stack: shop
targets:
  local: {provider: local}
principals:
  api: {}
defaults:
  labels: {owner: team-shop}
  rotation: 30d
secrets:
"""
STACK = HEADER + """\
  - name: shop/db
    targets: [local]
    value: {env: SHOP_DB}
  - name: shop/old
    targets: [local]
    value: {generate: {length: 40}}
"""
EDITED = HEADER + """\
  - name: shop/db
    description: the database
    targets: [local]
    value: {env: SHOP_DB}
    readers: [api]
  - name: shop/new
    targets: [local]
    value: {generate: {length: 40}}
"""


def rego_paths() -> set[str]:
    blocks = re.findall(r"```rego\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/plan-json.md lost its Rego example"
    code = "\n".join(line for block in blocks for line in block.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b((?:change|input)(?:\.[a-z_]+)+)", code))


def _walk(node: Any, parts: list[str]) -> bool:
    for i, part in enumerate(parts):
        if i and parts[i - 1] == "labels":
            return True  # the user's own label keys
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def resolves(doc: dict[str, Any], path: str) -> bool:
    """Some change (for ``change.…``) or the document (for ``input.…``) has this path."""
    root, *parts = path.split(".")
    return any(_walk(node, parts) for node in (doc["changes"] if root == "change" else [doc]))


def test_every_path_of_the_rego_example_exists_in_a_real_plan(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = write_stack(STACK)
    assert cli("apply", "-C", str(stack), "--auto-approve", env={"SHOP_DB": canary}).code == 0
    (stack / "cloudsync.yaml").write_text(EDITED)
    result = cli("plan", "-C", str(stack), "--format", "json", env={"SHOP_DB": canary})
    assert_no_canary(canary, result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert sorted(c["action"] for c in doc["changes"]) == ["create", "delete", "update"]
    paths = rego_paths()
    assert {"change.before.value.changed_outside_cloudsync", "change.after.rotation.every",
            "input.summary.delete"} <= paths  # the extraction itself works
    missing = sorted(p for p in paths if not resolves(doc, p))
    assert missing == []


def test_the_checker_does_catch_a_path_the_format_lacks() -> None:
    """The positive control: a made-up path is reported."""
    doc = {"changes": [{"before": {"labels": {"env": "x"}, "value": {"version": "1"}}}], "summary": {"delete": 0}}
    assert resolves(doc, "change.before.labels.env") and resolves(doc, "input.summary.delete")
    assert not resolves(doc, "change.before.value.checksum") and not resolves(doc, "input.summary.destroy")

"""Policies gate plan and apply: violations at the declaration's line, waivers with an end."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import CliResult

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
defaults:
  labels: {owner: team-shop}
secrets:
  - name: legacy/slow
    targets: [local]
    value: {generate: {length: 32}}
    rotation: 400d
"""


def test_a_400_day_rotation_cannot_be_applied_and_the_plan_says_where(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    stack = write_stack(STACK)
    plan = cli("plan", "-C", str(stack), "--format", "json")
    assert plan.code == 1
    (violation,) = json.loads(plan.stdout)["policy"]["violations"]
    assert violation["policy"] == "CS006" and violation["severity"] == "error"
    assert violation["address"] == "local:legacy/slow" and violation["line"] == 8
    assert violation["file"].endswith("cloudsync.yaml")

    applied = cli("apply", "-C", str(stack), "--auto-approve")
    assert applied.code == 1
    assert "cloudsync.yaml:8: error: policy CS006" in applied.stderr and "nothing was applied" in applied.stderr
    assert "Apply complete" not in applied.stdout

    markdown = cli("plan", "-C", str(stack), "--format", "markdown")
    assert "Policy violations (1)" in markdown.stdout and "#L8" in markdown.stdout


def test_a_waiver_lets_it_through_until_it_expires(cli: Callable[..., CliResult],
                                                  write_stack: Callable[..., Path]) -> None:
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    stack = write_stack(STACK, {"policies/waivers.yaml": f"""\
waivers:
  - policy: CS006
    secrets: ["legacy/*"]
    reason: the vendor rotates it on its own schedule, ticket SEC-42
    expires: {tomorrow}
"""})
    plan = cli("plan", "-C", str(stack), "--format", "json")
    assert plan.code == 0, plan.output
    data = json.loads(plan.stdout)
    assert data["policy"]["violations"] == [] and [w["policy"] for w in data["policy"]["waived"]] == ["CS006"]
    assert cli("apply", "-C", str(stack), "--auto-approve").code == 0

    (stack / "policies" / "waivers.yaml").write_text((stack / "policies" / "waivers.yaml").read_text()
                                                    .replace(tomorrow, "2020-01-01"))
    plan = cli("plan", "-C", str(stack))
    assert plan.code == 1 and "expired" in plan.stderr


def test_policy_check_needs_no_cloud_and_speaks_sarif(cli: Callable[..., CliResult],
                                                     write_stack: Callable[..., Path]) -> None:
    stack = write_stack(STACK)
    result = cli("policy", "check", "-C", str(stack), "--format", "sarif")
    assert result.code == 1
    sarif = json.loads(result.stdout)
    (res,) = sarif["runs"][0]["results"]
    assert res["ruleId"] == "CS006" and res["locations"][0]["physicalLocation"]["region"]["startLine"] == 8


def test_the_built_in_pack_can_be_turned_off(cli: Callable[..., CliResult], write_stack: Callable[..., Path]) -> None:
    stack = write_stack(STACK.replace("defaults:", "policy: {builtin: false}\ndefaults:"))
    plan = cli("plan", "-C", str(stack), "--format", "json")
    assert plan.code == 0 and json.loads(plan.stdout)["policy"]["violations"] == []

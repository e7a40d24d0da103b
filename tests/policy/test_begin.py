"""Policies begun before the plan is built (what ``cloudsync plan`` does) report what evaluate reports."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from cloudsync.plan.build import PlanRun, Values
from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.plan.planner import DesiredSecret, DesiredValue
from cloudsync.policy import evaluate
from cloudsync.policy.budget import Batch, Budget, Spent
from cloudsync.policy.engine import begin
from cloudsync.providers.base import RemoteSecret

from .helpers import TODAY, pairs, stack_with, write

ORG = """\
    policies:
      - {id: ORG001, title: Updates need review, severity: error, message: "{address} is updated",
         match: change != null, rule: change.action != "update"}
      - {id: ORG002, title: Remotes are ours, severity: warning, message: "{address} belongs to another stack",
         match: remote != null, rule: remote.owner == stack.name}
    """


def test_begun_before_the_plan_it_reports_what_evaluate_reports(tmp_path: Path) -> None:
    policies = write(tmp_path / "org", {"org.yaml": ORG})
    stack = stack_with(tmp_path / "s", """\
        - {name: app/a, targets: [gcp-prod, gcp-dev], readers: [api-prod]}
        - {name: app/b, targets: [gcp-prod], readers: [everyone]}
        - {name: app/c, targets: [gcp-dev], readers: [api-prod], labels: {env: prod}}
        """)
    evaluation = begin(stack, ["gcp-prod"], extra_dirs=[policies], today=TODAY)  # the plan is not built yet
    desired = [DesiredSecret(target="gcp-prod", provider="gcp", secret=name, remote_name=name.replace("/", "-"),
                             value=DesiredValue("none")) for name in ("app/a", "app/b")]
    changes = [Change(address="gcp-prod:app/a", target="gcp-prod", provider="gcp", secret="app/a",
                      remote_name="app-a", action=Action.UPDATE, reasons=(Reason.ACCESS,)),
               Change(address="gcp-prod:app/b", target="gcp-prod", provider="gcp", secret="app/b",
                      remote_name="app-b", action=Action.NOOP)]
    actual = {"gcp-prod": {"app-b": RemoteSecret(name="app-b", managed=True, owner="other")}}
    plan = Plan(stack=stack.name, changes=changes, created_at=datetime(2026, 6, 1, tzinfo=UTC), targets=["gcp-prod"])
    run = PlanRun(plan=plan, values=Values(), actual=actual, desired=desired)

    begun = evaluation.finish(run)
    after = evaluate(stack, run, extra_dirs=[policies], today=TODAY)
    # A policy that reads the plan (ORG001, ORG002) and one that reads the secret alone (CS001) both count.
    assert {("ORG001", "gcp-prod:app/a"), ("ORG002", "gcp-prod:app/b"), ("CS001", "gcp-prod:app/b")} <= pairs(begun)
    assert [v.as_dict() for v in begun.violations] == [v.as_dict() for v in after.violations]
    assert begun.evaluated == after.evaluated == 2  # gcp-dev is not planned
    assert begun.diagnostics == after.diagnostics


def test_a_rule_past_its_budget_is_spent_even_when_its_answer_is_read_late() -> None:
    # The evaluator answers while the caller builds the plan; the rule's time is judged by
    # when its answer arrived, not by when the caller got round to reading it.
    items = "[" + ",".join(str(i) for i in range(100)) + "]"
    slow = f"{items}.all(a, {items}.all(b, {items}.all(c, a + b + c >= 0)))"  # a million steps: ~1 s
    batch = Batch(Budget(), rule_seconds=0.2)
    batch.submit(None, [("check", slow, {}), ("check", "1 == 1", {})])
    time.sleep(4)  # the plan being built
    overrun, quick = batch.collect()
    assert isinstance(overrun, Spent) and "budget of 0.2 s" in overrun.reason
    assert quick == ("value", "bool")  # the task after it still ran

"""Drive cloudsync's engine (load, plan, apply) against the fake, as the CLI would."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloudsync.apply import ApplyReport, apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session, select_targets
from cloudsync.plan.model import Plan
from cloudsync.plan.render import render_json, render_markdown, render_text

# Every outcome of the current test, for the leak check the package's conftest runs after it.
OUTCOMES: list[Outcome] = []


@dataclass
class Outcome:
    run: PlanRun
    report: ApplyReport | None
    calls: dict[str, int]  # API calls of the provider in this session, by method

    @property
    def plan(self) -> Plan:
        return self.run.plan

    def changes(self) -> list[tuple[str, str, list[str]]]:
        return [(c.secret, c.action.value, [r.value for r in c.reasons]) for c in self.plan.real_changes]

    def rendered(self) -> str:
        """Every way the plan and the apply report can be shown (for leak checks)."""
        plan = self.plan
        parts = [str(render_text(plan)), render_json(plan), render_markdown(plan)]
        parts += [d.render() for d in plan.diagnostics]
        if self.report is not None:
            parts += [r.error or "" for r in self.report.results]
        return "\n".join(parts)


def plan(root: Path, *, metadata_only: bool = False) -> Outcome:
    return _run(root, apply=False, metadata_only=metadata_only)


def apply(root: Path, *, expect_ok: bool = True) -> Outcome:
    outcome = _run(root, apply=True, metadata_only=False)
    if expect_ok:
        assert outcome.report is not None and outcome.report.ok, [r.error for r in outcome.report.results]
    return outcome


def plan_then_apply(root: Path, meanwhile: Callable[[], None]) -> Outcome:
    """Plan, let ``meanwhile`` change the target (a concurrent edit), then apply that plan."""
    return _run(root, apply=True, metadata_only=False, meanwhile=meanwhile)


def _run(root: Path, *, apply: bool, metadata_only: bool, meanwhile: Callable[[], None] | None = None) -> Outcome:
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, select_targets(stack, None), metadata_only=metadata_only)
        if meanwhile is not None:
            meanwhile()
        report = apply_plan(session, run, sleep=lambda _: None) if apply else None
        calls = dict(session.provider("gcp-prod").api_calls)
    outcome = Outcome(run=run, report=report, calls=calls)
    OUTCOMES.append(outcome)
    return outcome

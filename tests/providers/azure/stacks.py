"""Test stacks on the fake and the engine calls the tests make (plan, apply)."""

from __future__ import annotations

from pathlib import Path

from cloudsync.apply import ApplyReport, apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.plan.render import render_json, render_markdown, render_text
from tests.fakes.azure import AzureFake

# Everything the engine helpers produced in the current test (plans rendered every way,
# reports): the conftest's leak check asserts that no stored value appears in any of it.
OUTPUTS: list[str] = []


def _record(run: PlanRun, report: ApplyReport | None = None) -> None:
    OUTPUTS.extend([str(render_text(run.plan)), render_json(run.plan), render_markdown(run.plan),
                    repr(run.plan), repr(run.actual), repr(report)])

# Principals of the test stacks (Entra object ids).
API = "00000000-0000-4000-8000-0000000000a1"
WORKER = "00000000-0000-4000-8000-0000000000a2"
AUDITOR = "00000000-0000-4000-8000-0000000000a3"


def target_yaml(fake: AzureFake, **extra: str | None) -> str:
    """The ``azure-prod`` target on the fake, as a YAML flow mapping (``extra`` overrides fields, None drops one)."""
    fields = {"provider": "azure", "vault_url": fake.url, "subscription_id": fake.subscription_id,
              "resource_group": fake.resource_group, "vault_name": fake.vault_name, "arm_endpoint": fake.url, **extra}
    return "{" + ", ".join(f"{k}: {v!r}" if k != "provider" else f"{k}: {v}"
                           for k, v in fields.items() if v is not None) + "}"


def plan(root: Path, *, metadata_only: bool = False) -> PlanRun:
    """Plan a stack through the engine (its own session, closed afterwards)."""
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets), metadata_only=metadata_only)
    _record(run)
    return run


def apply(root: Path) -> tuple[PlanRun, ApplyReport]:
    """Plan and apply a stack through the engine; the report must be all applied."""
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, list(stack.config.targets))
        report = apply_plan(session, run)
    _record(run, report)
    return run, report


def changes(run: PlanRun) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{secret: (action, reasons)}`` of a plan's real changes."""
    return {c.secret: (c.action.value, tuple(r.value for r in c.reasons)) for c in run.plan.real_changes}

"""Helpers shared by the policy tests: write and load stacks, run the policy commands."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from cloudsync.config.loader import Stack, load_stack
from cloudsync.policy import PolicyReport, evaluate
from cloudsync.policy.commands import policy_app

TODAY = date(2026, 6, 1)

STACK_HEAD = """\
version: 1
stack: demo
targets:
  local: {provider: local}
  gcp-prod: {provider: gcp, project: acme-prod}
  gcp-dev: {provider: gcp, project: acme-dev}
principals:
  api-prod: {gcp: "serviceAccount:api@acme-prod.iam.gserviceaccount.com"}
  everyone: {gcp: allUsers}
defaults:
  labels: {owner: team-a}
  rotation: 30d
  expires: 90d
  deletion_protection: true
"""


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def stack_with(root: Path, secrets: str, *, head: str = STACK_HEAD, extra: dict[str, str] | None = None) -> Stack:
    """A stack of ``head`` plus a ``secrets:`` block, loaded."""
    write(root, {"cloudsync.yaml": head + "secrets:\n" + textwrap.indent(textwrap.dedent(secrets), "  "),
                 **(extra or {})})
    return load_stack(root)


def pairs(report: PolicyReport, *, waived: bool = False) -> set[tuple[str, str]]:
    return {(v.policy, v.address) for v in (report.waived if waived else report.violations)}


def check(stack: Stack, *, only: Sequence[str] | None = None, extra_dirs: Sequence[Path] = ()) -> PolicyReport:
    report = evaluate(stack, extra_dirs=extra_dirs, today=TODAY)
    if only is not None:
        report.violations = [v for v in report.violations if v.policy in only]
    return report


def invoke(*args: str) -> tuple[int, str, str]:
    """Run ``cloudsync policy ARGS`` in process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(policy_app, list(args))
    return result.exit_code, result.stdout, result.stderr

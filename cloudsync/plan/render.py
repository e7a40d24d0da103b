"""Plan renderers: text (for people), json (the contract), markdown (for PR comments).

No renderer ever sees a value: changes carry fingerprints and display lines only.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from cloudsync.plan.model import Action, Change, Plan, ValueMode
from cloudsync.values.fingerprint import short

FORMAT_VERSION = 1
GITHUB_COMMENT_LIMIT = 65_535
MARKDOWN_BUDGET = 60_000  # leave room for a workflow's own header and footer

SYMBOLS = {
    Action.CREATE: ("+", "green"),
    Action.UPDATE: ("~", "yellow"),
    Action.DELETE: ("-", "red"),
    Action.RESTORE: ("^", "cyan"),
    Action.NOOP: (" ", ""),
}


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    return (f"Plan: {s['create']} to create, {s['update']} to update, {s['delete']} to delete, "
            f"{s['restore']} to restore, {s['unchanged']} unchanged.")


def _value_line(change: Change) -> str | None:
    v = change.value
    if v is None:
        return None
    if v.mode is ValueMode.UNKNOWN:
        return "value: (sensitive, unknown: metadata-only plan)"
    if v.mode is ValueMode.GENERATE:
        return "value: (sensitive) generated at apply"
    if v.mode is ValueMode.COPY:
        return f"value: (sensitive) copied from {v.copy_from} at apply"
    return f"value: (sensitive) fingerprint {short(v.fingerprint)}" if v.fingerprint else "value: (sensitive)"


def render_text(plan: Plan) -> Text:
    out = Text()
    targets = ", ".join(plan.targets)
    mode = " (metadata only: values not compared)" if plan.metadata_only else ""
    out.append(f"cloudsync plan for stack {plan.stack} (targets: {targets}){mode}\n\n")
    real = plan.real_changes
    if not real:
        out.append("No changes. The targets match the desired state.\n", style="bold")
    width = max((len(c.address) for c in real), default=0)
    for change in real:
        symbol, style = SYMBOLS[change.action]
        out.append(f"  {symbol} ", style=f"bold {style}")
        out.append(f"{change.action.value:<8}", style=style)
        out.append(f"{change.address:<{width}}")
        if change.reasons:
            out.append(f"  ({', '.join(r.value for r in change.reasons)})", style="dim")
        out.append("\n")
        lines = list(change.details)
        value_line = _value_line(change)
        if (value_line and change.action in (Action.CREATE, Action.RESTORE)) or (
            value_line and not any(d.startswith("value") for d in lines)
        ):
            lines.append(value_line)  # type: ignore[arg-type]
        for line in lines:
            out.append(f"        {line}\n", style="dim")
    out.append("\n")
    out.append(summary_line(plan) + "\n", style="bold")
    return out


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan JSON contract (format_version 1); more keys may be added, none removed."""
    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "metadata_only": plan.metadata_only,
        "targets": plan.targets,
        "changes": [change_to_dict(c) for c in plan.real_changes],
        "summary": plan.summary(),
        "policy": {"violations": []},
        "diagnostics": [d.as_dict() for d in plan.diagnostics],
    }


def change_to_dict(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {
        "address": change.address,
        "target": change.target,
        "provider": change.provider,
        "secret": change.secret,
        "remote_name": change.remote_name,
        "action": change.action.value,
        "reasons": [r.value for r in change.reasons],
        "details": list(change.details),
    }
    if change.value is not None:
        data["value"] = {"mode": change.value.mode.value,
                         "fingerprint": short(change.value.fingerprint) if change.value.fingerprint else None,
                         **({"copy_from": change.value.copy_from} if change.value.copy_from else {})}
    if change.file:
        data["file"] = change.file
        data["line"] = change.line
    return data


def render_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2)


def marker(kind: str, stack: str) -> str:
    """A stable marker so a workflow can find and update its previous comment."""
    return f"<!-- cloudsync:{kind} stack={stack} -->"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render_markdown(plan: Plan, budget: int = MARKDOWN_BUDGET) -> str:
    """A PR comment: summary table first, details collapsed, always under GitHub's limit."""
    s = plan.summary()
    head = [
        marker("plan", plan.stack),
        f"### cloudsync plan: `{plan.stack}`" + (" (metadata only)" if plan.metadata_only else ""),
        "",
        "| create | update | delete | restore | unchanged |",
        "|---:|---:|---:|---:|---:|",
        f"| {s['create']} | {s['update']} | {s['delete']} | {s['restore']} | {s['unchanged']} |",
        "",
    ]
    for diag in plan.diagnostics:
        where = f" (`{diag.file}:{diag.line}`)" if diag.file else ""
        head.append(f"> **{diag.severity.value}**: {_md_escape(diag.message)}{where}")
    real = plan.real_changes
    if not real:
        head.append("No changes.")
        return "\n".join(head) + "\n"
    head += ["<details><summary>Changes</summary>", "", "| | address | action | reasons |", "|---|---|---|---|"]
    tail = ["", "</details>", ""]
    used = sum(len(line) + 1 for line in head + tail)
    rows: list[str] = []
    for i, change in enumerate(real):
        symbol = SYMBOLS[change.action][0]
        row = (f"| `{symbol}` | `{_md_escape(change.address)}` | {change.action.value} | "
               f"{', '.join(r.value for r in change.reasons)} |")
        rest = len(real) - i
        reserve = 120  # room for the "and N more" line
        if used + len(row) + 1 + reserve > budget:
            rows.append(f"\n… and {rest} more changes not listed (see the full plan in the job log or plan file).")
            break
        rows.append(row)
        used += len(row) + 1
    text = "\n".join(head + rows + tail)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    return text

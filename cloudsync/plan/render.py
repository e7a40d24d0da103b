"""Plan renderers: text (for people), json (the contract), markdown (for PR comments).

No renderer ever sees a value: changes carry fingerprints and display lines only. Text
and markdown show every name and detail through ``safe_text`` (bounded, no control
characters): a secret named ``"x\nNo changes."`` cannot print a line of its own. JSON is
the faithful contract: its encoder escapes control characters itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text

from cloudsync.plan.comment import DEFAULT_BUDGET, Comment, code, escape, marker, source_link
from cloudsync.plan.model import Action, Change, Plan, ValueMode
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text
from cloudsync.values.fingerprint import short

FORMAT_VERSION = 1

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
        return "value: (sensitive, not known in this plan: metadata-only, or its source is written by this apply)"
    if v.mode is ValueMode.GENERATE:
        return "value: (sensitive) generated at apply"
    if v.mode is ValueMode.DERIVED:
        return "value: (sensitive) derived at apply from the value it writes to its source"
    if v.mode is ValueMode.COPY:
        return f"value: (sensitive) copied from {safe_text(v.copy_from, NAME_LIMIT)} at apply"
    return f"value: (sensitive) fingerprint {short(v.fingerprint)}" if v.fingerprint else "value: (sensitive)"


def render_text(plan: Plan) -> Text:
    out = Text()
    targets = ", ".join(safe_text(t, NAME_LIMIT) for t in plan.targets)
    mode = " (metadata only: values not compared)" if plan.metadata_only else ""
    out.append(f"cloudsync plan for stack {safe_text(plan.stack, NAME_LIMIT)} (targets: {targets}){mode}\n\n")
    real = plan.real_changes
    if not real:
        out.append("No changes. The targets match the desired state.\n", style="bold")
    addresses = [safe_text(c.address, NAME_LIMIT) for c in real]
    width = max((len(a) for a in addresses), default=0)
    for change, address in zip(real, addresses, strict=True):
        symbol, style = SYMBOLS[change.action]
        out.append(f"  {symbol} ", style=f"bold {style}")
        out.append(f"{change.action.value:<8}", style=style)
        out.append(f"{address:<{width}}")
        if change.reasons:
            out.append(f"  ({', '.join(r.value for r in change.reasons)})", style="dim")
        out.append("\n")
        lines = list(change.details)
        value_line = _value_line(change)
        if value_line and not any(d.startswith("value") for d in lines):
            lines.append(value_line)
        for line in lines:
            out.append(f"        {safe_text(line, TEXT_LIMIT)}\n", style="dim")
    out.append("\n")
    out.append(summary_line(plan) + "\n", style="bold")
    return out


def plan_to_dict(plan: Plan, violations: Sequence[Mapping[str, Any]] = (),
                 waived: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The plan JSON contract (format_version 1); more keys may be added, none removed."""
    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "metadata_only": plan.metadata_only,
        "targets": plan.targets,
        "changes": [change_to_dict(c) for c in plan.real_changes],
        "summary": plan.summary(),
        "policy": {"violations": list(violations), "waived": list(waived)},
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
    if change.retire:
        data["retire"] = [{"version": r.version, "due": r.due.isoformat(),
                           "written_at": r.written_at.isoformat() if r.written_at else None} for r in change.retire]
    if change.file:
        data["file"] = change.file
        data["line"] = change.line
    return data


def render_json(plan: Plan, violations: Sequence[Mapping[str, Any]] = (),
                waived: Sequence[Mapping[str, Any]] = ()) -> str:
    return json.dumps(plan_to_dict(plan, violations, waived), indent=2)


def render_markdown(plan: Plan, violations: Sequence[Mapping[str, Any]] = (), budget: int = DEFAULT_BUDGET) -> str:
    """A PR comment: summary table first, policy violations linked to their lines, changes
    collapsed; always under GitHub's comment limit, whatever the size of the estate."""
    s = plan.summary()
    doc = Comment(budget)
    title = f"### cloudsync plan: {code(plan.stack)}" + (" (metadata only: values not compared)" if plan.metadata_only else "")
    doc.add(marker("plan", plan.stack), title, "",
            "| create | update | delete | restore | unchanged | policy violations |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['create']} | {s['update']} | {s['delete']} | {s['restore']} | {s['unchanged']} | {len(violations)} |",
            "")
    for diag in plan.diagnostics[:20]:
        doc.add(f"> **{diag.severity.value}**: {escape(diag.message)} {source_link(diag.file, diag.line)}".rstrip())
    if violations:
        rows = [f"| {escape(v.get('severity', ''))} | {code(v.get('policy', ''))} | "
                f"{code(v.get('address', ''))} | {escape(v.get('message', ''))} | "
                f"{source_link(v.get('file'), v.get('line'))} |" for v in violations]
        doc.section(f"Policy violations ({len(violations)})",
                    ["| severity | policy | address | message | declared at |", "|---|---|---|---|---|"], rows)
    real = plan.real_changes
    if not real:
        doc.add("No changes.")
        return doc.text()
    rows = [f"| `{SYMBOLS[c.action][0]}` | {code(c.address)} | {c.action.value} | "
            f"{', '.join(r.value for r in c.reasons)} | {escape('; '.join(c.details))} |" for c in real]
    doc.section(f"Changes ({len(real)})", ["| | address | action | reasons | details |", "|---|---|---|---|---|"], rows)
    return doc.text()

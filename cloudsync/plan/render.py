"""Plan renderers: text (for people), json (the contract), markdown (for PR comments).

No renderer ever sees a value: changes carry fingerprints and display lines only. Text
and markdown show every name and detail through ``safe_text`` (bounded, no control
characters): a secret named ``"x\nNo changes."`` cannot print a line of its own. JSON is
the faithful contract: its encoder escapes control characters itself.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from cloudsync.config.durations import format_duration
from cloudsync.diagnostics import Severity
from cloudsync.plan import attributes
from cloudsync.plan.attributes import quoted
from cloudsync.plan.comment import DEFAULT_BUDGET, Comment, code, escape, marker, run_line, source_link
from cloudsync.plan.model import Action, Change, Plan, ValueMode
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text
from cloudsync.values.fingerprint import short

if TYPE_CHECKING:
    from cloudsync.policy.model import PolicyReport

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


def change_lines(change: Change) -> list[str]:
    """What a reviewer reads under a change: its details, what a create sets, how a delete ends."""
    lines = list(change.details)
    if change.action is Action.CREATE and change.after is not None:
        state = change.after
        if state.description:
            lines.append(f"description: {quoted(state.description)}")
        if state.labels:
            lines.append("labels: " + ", ".join(f"{k}: {quoted(v, 100)}" for k, v in sorted(state.labels.items())))
        if state.readers:
            lines.append("readers: " + ", ".join(sorted(state.readers)))
        if state.expires_at is not None:
            lines.append(f"expiry: {state.expires_at.strftime('%Y-%m-%dT%H:%MZ')}")
        if change.rotation is not None:
            by = " (by an external system)" if change.rotation_by == "external" else ""
            lines.append(f"rotation: every {format_duration(change.rotation)}{by}")
    if change.action is Action.DELETE and change.before is not None:
        lines.append("purged: not recoverable" if change.before.purge_on_delete else
                     "soft delete: recoverable until the target's recovery window ends")
    value_line = _value_line(change)
    if value_line and not any(d.startswith("value") for d in lines):
        lines.append(value_line)
    return lines


DETAIL_INDENT = 8


def _wrapped(line: str, width: int | None) -> list[str]:
    """A detail line cut at spaces to fit ``width`` columns (a word longer than a line is cut)."""
    room = (width or 0) - DETAIL_INDENT
    if room < 20:
        return [line]
    return textwrap.wrap(line, room, break_on_hyphens=False, subsequent_indent="  ") or [line]


def render_text(plan: Plan, width: int | None = None) -> Text:
    """The plan for a terminal; ``width`` (the terminal's) wraps detail lines at spaces."""
    out = Text()
    targets = ", ".join(safe_text(t, NAME_LIMIT) for t in plan.targets)
    mode = " (metadata only: values not compared)" if plan.metadata_only else ""
    out.append(f"cloudsync plan for stack {safe_text(plan.stack, NAME_LIMIT)} (targets: {targets}){mode}\n\n")
    real = plan.real_changes
    if not real and plan.has_errors:
        errors = sum(1 for d in plan.diagnostics if d.severity is Severity.ERROR)
        out.append(f"Nothing can be planned until {_plural(errors, 'error')} (below) "
                   f"{'is' if errors == 1 else 'are'} fixed.\n", style="bold red")
    elif not real:
        out.append("No changes. The targets match the desired state.\n", style="bold")
    addresses = [safe_text(c.address, NAME_LIMIT) for c in real]
    width_ = max((len(a) for a in addresses), default=0)
    for change, address in zip(real, addresses, strict=True):
        symbol, style = SYMBOLS[change.action]
        out.append(f"  {symbol} ", style=f"bold {style}")
        out.append(f"{change.action.value:<8}", style=style)
        if change.reasons:  # padded only when something follows: no trailing spaces
            out.append(f"{address:<{width_}}")
            out.append(f"  ({', '.join(r.value for r in change.reasons)})", style="dim")
        else:
            out.append(address)
        out.append("\n")
        for line in change_lines(change):
            for part in _wrapped(safe_text(line, TEXT_LIMIT), width):
                out.append(f"{' ' * DETAIL_INDENT}{part}\n", style="dim")
    out.append("\n")
    out.append(summary_line(plan) + "\n", style="bold")
    return out


def policy_text(report: PolicyReport) -> Text:
    """The policy check under a plan, coloured: errors red, warnings yellow, waived dim."""
    from cloudsync.policy.render import render_text as render_policy

    lines = render_policy(report).split("\n")
    styles = [*("red" if v.severity == "error" else "yellow" for v in report.violations),
              *("dim" for _ in report.waived), "bold red" if report.blocking else "bold green"]
    out = Text()
    for i, line in enumerate(lines):
        # The last line is the verdict; a line count that ever differs only loses a colour.
        out.append(line + "\n", style=styles[-1] if i == len(lines) - 1 else styles[i] if i < len(styles) - 1 else "")
    return out


def plan_to_dict(plan: Plan, violations: Sequence[Mapping[str, Any]] = (),
                 waived: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The plan JSON contract (format_version 1); more keys may be added, none removed."""
    return {
        "format_version": FORMAT_VERSION,
        "stack": plan.stack,
        "metadata_only": plan.metadata_only,
        "targets": plan.targets,
        # Structured sides over the managed attributes (never a value): see docs/plan-json.md.
        # Not in change_to_dict: the saved plan file, which reuses it, has its own schema.
        "changes": [{**change_to_dict(c), "before": attributes.before(c), "after": attributes.after(c)}
                    for c in plan.real_changes],
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


CHANGES_OPEN = 10  # up to this many changes are listed open; more are folded in a <details>
BANNER_LISTED = 30  # blocking errors listed un-folded in the banner; the rest are counted
DELETES_LISTED = 30  # deletes listed in the warning block


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def headline(plan: Plan, violations: Sequence[Mapping[str, Any]]) -> str:
    """One line a reviewer reads first: stack, targets, counts, policy verdict."""
    s = plan.summary()
    counts = [f"{s[a]} to {a}" for a in ("create", "update", "delete", "restore") if s[a]]
    counts.append(f"{s['unchanged']} unchanged")
    errors = sum(1 for v in violations if v.get("severity") == "error")
    warnings = len(violations) - errors
    policy = ", ".join([_plural(errors, "error")] + ([_plural(warnings, "warning")] if warnings else [])) \
        if violations else "passed"
    targets = ", ".join(code(t) for t in plan.targets) or "none"
    label = "target" if len(plan.targets) == 1 else "targets"
    return f"**stack** {code(plan.stack)} · **{label}** {targets}: {', '.join(counts)} · **policy**: {policy}"


def _banner(doc: Comment, plan: Plan, violations: Sequence[Mapping[str, Any]]) -> None:
    """Apply would be refused: say so first, with every blocking error in sight (never folded)."""
    errors = [v for v in violations if v.get("severity") == "error"]
    plan_errors = [d for d in plan.diagnostics if d.severity is Severity.ERROR]
    if not errors and not plan_errors:
        return
    why = " and ".join(part for part in (_plural(len(errors), "policy error") if errors else "",
                                         _plural(len(plan_errors), "plan error") if plan_errors else "") if part)
    doc.add(f"> **Apply will be refused: {why}.** Fix them, or waive a policy with a reason and "
            "an expiry.", ">")
    items = [f"> - **{escape(v.get('policy', ''))}** {code(v.get('address', ''))}: {escape(v.get('message', ''))} "
             f"{source_link(v.get('file'), v.get('line'))}".rstrip() for v in errors]
    items += [f"> - {escape(d.message)}{f' (hint: {escape(d.hint)})' if d.hint else ''} "
              f"{source_link(d.file, d.line)}".rstrip() for d in plan_errors]
    shown = 0
    for item in items[:BANNER_LISTED]:
        if not doc.add(item):
            break
        shown += 1
    if shown < len(items):
        doc.add(f"> - … and {len(items) - shown} more (the policy table below and the job log list them all)")
    doc.add("")


def _deletes(doc: Comment, plan: Plan) -> None:
    deletes = [c for c in plan.real_changes if c.action is Action.DELETE]
    if not deletes:
        return
    doc.add(f"> **Warning: apply deletes {_plural(len(deletes), 'secret')}** (no longer declared):", ">")
    shown = 0
    for change in deletes[:DELETES_LISTED]:
        how = ("**purged: not recoverable**" if change.before is not None and change.before.purge_on_delete
               else "soft delete, recoverable")
        if not doc.add(f"> - {code(change.address)} ({how})"):
            break
        shown += 1
    if shown < len(deletes):
        doc.add(f"> - … and {len(deletes) - shown} more (see the changes below)")
    doc.add("")


def render_markdown(plan: Plan, violations: Sequence[Mapping[str, Any]] = (), budget: int = DEFAULT_BUDGET) -> str:
    """A PR comment: a one-line summary, a banner when apply would be refused, a warning for
    deletes, then policy violations linked to their lines and the changes (folded when many);
    always under GitHub's comment limit, whatever the size of the estate."""
    doc = Comment(budget)
    title = f"### cloudsync plan: {code(plan.stack)}" + (" (metadata only: values not compared)" if plan.metadata_only else "")
    doc.add(marker("plan", plan.stack), title, "", headline(plan, violations), "")
    run = run_line()
    if run:
        doc.add(run, "")
    _banner(doc, plan, violations)
    _deletes(doc, plan)
    for diag in [d for d in plan.diagnostics if d.severity is not Severity.ERROR][:20]:
        hint = f" (hint: {escape(diag.hint)})" if diag.hint else ""
        doc.add(f"> **{diag.severity.value}**: {escape(diag.message)}{hint} {source_link(diag.file, diag.line)}".rstrip(),
                "")
    if violations:
        rows = [f"| {escape(v.get('severity', ''))} | {code(v.get('policy', ''))} | "
                f"{code(v.get('address', ''))} | {escape(v.get('message', ''))} | "
                f"{source_link(v.get('file'), v.get('line'))} |" for v in violations]
        doc.section(f"Policy violations ({len(violations)})",
                    ["| severity | policy | address | message | declared at |", "|---|---|---|---|---|"], rows)
    real = plan.real_changes
    if not real:
        doc.add("No changes." if not plan.has_errors else "No changes can be planned until the errors above are fixed.")
        return doc.text()
    rows = [f"| `{SYMBOLS[c.action][0]}` | {code(c.address)} | {c.action.value} | "
            f"{', '.join(r.value for r in c.reasons) or '—'} | "
            f"{'<br>'.join(escape(line) for line in change_lines(c)) or '—'} |" for c in real]
    doc.section(f"Changes ({len(real)})", ["| | address | action | reasons | details |", "|---|---|---|---|---|"], rows,
                collapsed=len(real) > CHANGES_OPEN)
    return doc.text()

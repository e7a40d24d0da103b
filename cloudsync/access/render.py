"""Access report renderers: text for a terminal, markdown for a PR comment or an issue (bounded)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

from rich.text import Text

from cloudsync.access.model import AccessReport, Reader, SecretAccess
from cloudsync.access.versions import LiveVersion
from cloudsync.drift import Drift
from cloudsync.plan.comment import DEFAULT_BUDGET, Comment, escape, marker
from cloudsync.safe_text import NAME_LIMIT, safe_text


def shown(text: str) -> str:
    """A name, principal or grant, fit for any output (see :mod:`cloudsync.safe_text`)."""
    return safe_text(text, NAME_LIMIT)


def render_json(report: AccessReport) -> str:
    return json.dumps(report.as_dict(), indent=2)


def _who(reader: Reader) -> str:
    return shown(f"{reader.name} ({reader.principal})" if reader.name else reader.principal)


def _grant(reader: Reader) -> str:
    cond = ", conditional" if reader.conditional else ""
    return shown(f"via {reader.via.value} {reader.scope}: {reader.grant}{cond}")


def _usage(item: SecretAccess) -> str:
    parts = []
    f = item.facts
    if f.tracks_last_access:
        parts.append(f"last read {f.last_accessed.isoformat() if f.last_accessed else 'never'}")
    if item.version_age_days is not None:
        parts.append(f"value age {item.version_age_days}d")
    if item.rotation_due is not None:
        parts.append(f"rotation {'OVERDUE since' if item.rotation_overdue else 'due'} {item.rotation_due.isoformat()}")
    if f.expires_at is not None:
        parts.append(f"expires {f.expires_at.date().isoformat()}")
    if f.old_versions:
        late = f.past_grace
        parts.append(f"{len(f.old_versions)} old version{'' if len(f.old_versions) == 1 else 's'} still live"
                     + (f" ({len(late)} past grace)" if late else "") + ": "
                     + "; ".join(_old(v, f.grace) for v in f.old_versions))
    return ", ".join(parts)


def _old(version: LiveVersion, grace: timedelta | None) -> str:
    age = f"{version.age_days}d old" if version.age_days is not None else "age unknown"
    late = ", PAST GRACE" if version.past_grace(grace) else ""
    return shown(f"{version.version} ({age}{late})")


def summary_line(report: AccessReport) -> str:
    s = report.summary()
    line = (f"{s['secrets']} secrets, {s['principals']} principals can read them; "
            f"{s['with_undeclared_readers']} with undeclared readers")
    if s["readers_incomplete"]:
        line += f", {s['readers_incomplete']} with readers unknown (scan incomplete)"
    if s["unused_grants"]:
        line += f", {s['unused_grants']} unused grants"
    return line + "."


def render_text(report: AccessReport) -> Text:
    out = Text()
    scope = f" for principal {shown(report.principal_filter)}" if report.principal_filter else ""
    out.append(f"cloudsync access for stack {shown(report.stack)}{scope} (targets: {shown(', '.join(report.targets))})\n\n")
    for item in report.secrets:
        f = item.facts
        out.append(f"  {shown(item.address)}", style="bold")
        out.append("" if f.managed else "  (unmanaged)", style="cyan")
        usage = _usage(item)
        out.append(f"  {usage}\n" if usage else "\n", style="red" if item.rotation_overdue else "dim")
        declared = ", ".join(shown(r) for r in f.declared_readers) or "none"
        out.append(f"      declared: {declared}\n", style="dim")
        if not f.complete:
            why = "; ".join(shown(r) for r in f.incomplete_reasons) or "the scan did not run"
            out.append(f"      readers: unknown beyond those listed ({why})\n", style="yellow")
        for reader in item.readers:
            if reader.declared:
                out.append(f"      {'ok':<11}", style="green")
            else:
                out.append(f"      {'UNDECLARED':<11}", style="bold red")
            out.append(f"{_who(reader)}  ")
            out.append(f"{_grant(reader)}\n", style="dim")
    if report.unused:
        out.append("\nUnused grants (declared readers of secrets not read recently):\n", style="bold")
        for unused in report.unused:
            when = unused.last_accessed.isoformat() if unused.last_accessed else "never"
            out.append(f"  {shown(unused.address)}  {shown(unused.reader)}  last read {when}\n")
    if report.principals:
        out.append("\nWho can read what:\n", style="bold")
        for principal in report.principals:
            who = f"{principal.name} ({principal.principal})" if principal.name else principal.principal
            count = len(principal.can_read)
            out.append(f"  {shown(who)}: {count} secret{'' if count == 1 else 's'}\n")
    out.append("\n" + summary_line(report) + "\n", style="bold")
    return out


def _cell_readers(item: SecretAccess) -> str:
    shown_rows = [f"{'' if r.declared else '**undeclared** '}{escape(_who(r))} {escape(r.via.value)}"
                  + (" (conditional)" if r.conditional else "") for r in item.readers]
    if not item.facts.complete:
        shown_rows.append("_unknown beyond these: scan incomplete_")
    return "<br>".join(shown_rows) or "none"


def render_markdown(report: AccessReport, budget: int = DEFAULT_BUDGET) -> str:
    s = report.summary()
    doc = Comment(budget)
    title = f"### cloudsync access: {escape(shown(report.stack))}"
    if report.principal_filter:
        title += f" — what {escape(shown(report.principal_filter))} can read"
    doc.add(marker("access", shown(report.stack)), title, "", summary_line(report), "",
            "| secrets | undeclared readers | readers unknown | principals | unused grants | rotation overdue |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {s['secrets']} | {s['with_undeclared_readers']} | {s['readers_incomplete']} | {s['principals']} "
            f"| {s['unused_grants']} | {s['rotation_overdue']} |", "")
    broad = [(item, r) for item in report.secrets for r in item.undeclared]
    if broad:
        rows = [f"| {escape(shown(item.address))} | {escape(_who(r))} | {escape(r.via.value)} "
                f"| {escape(shown(r.scope))} | {escape(shown(r.grant))}{' (conditional)' if r.conditional else ''} |"
                for item, r in broad]
        doc.section(f"Undeclared readers ({len(broad)})",
                    ["| secret | principal | via | scope | grant |", "|---|---|---|---|---|"], rows)
    rows = [f"| {escape(shown(item.address))} | {'yes' if item.facts.managed else 'no'} | {_cell_readers(item)} "
            f"| {escape(_usage(item))} |" for item in report.secrets]
    doc.section(f"Secrets ({len(report.secrets)})", ["| secret | managed | readers | use and age |", "|---|---|---|---|"],
                rows)
    rows = [f"| {escape(shown(p.name or p.principal))} | {escape(shown(p.principal))} | {len(p.can_read)} |"
            for p in report.principals]
    doc.section(f"Principals ({len(report.principals)})", ["| name | principal | secrets |", "|---|---|---:|"], rows)
    if report.unused:
        rows = [f"| {escape(shown(u.address))} | {escape(shown(u.reader))} "
                f"| {u.last_accessed.isoformat() if u.last_accessed else 'never'} |" for u in report.unused]
        doc.section(f"Unused grants ({len(report.unused)})", ["| secret | reader | last read |", "|---|---|---|"], rows)
    return doc.text()


# --- undeclared readers beside a plan ---------------------------------------------------------

BROAD_BUDGET = 4_000  # what a plan comment spends on them: it stays under GitHub's limit


def broad_readers_text(found: Sequence[Drift]) -> Text:
    """The undeclared readers through broader scopes, under a plan: apply does not remove them."""
    out = Text()
    if not found:
        return out
    out.append(f"Readers not declared ({len(found)}): granted at broader scopes, apply does not remove them\n",
               style="bold yellow")
    for item in found:
        out.append(f"  ! {shown(item.address)}  ", style="yellow")
        out.append(f"{shown(item.detail)}\n", style="dim")
    return out


def broad_readers_markdown(found: Sequence[Drift], budget: int = BROAD_BUDGET) -> str:
    if not found:
        return ""
    doc = Comment(budget)
    rows = [f"| {escape(shown(d.address))} | {escape(shown(d.principal or ''))} | {escape(d.via or '')} "
            f"| {escape(shown(d.detail))} |" for d in found]
    doc.add(f"> **{len(found)} undeclared readers** can read secrets of this stack through grants at broader "
            "scopes; apply does not remove them.", "")
    doc.section(f"Undeclared readers ({len(found)})", ["| secret | principal | via | where |", "|---|---|---|---|"],
                rows, reserve=100)
    return doc.text()


def broad_readers_json(found: Sequence[Drift]) -> list[dict[str, str]]:
    return [d.as_dict() for d in found]

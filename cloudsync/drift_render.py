"""Drift renderers: text for people, markdown for a PR comment or an issue (bounded).

Names and details come from the clouds and the files; both show them through
``safe_text`` (bounded, no control characters), markdown through ``escape``/``code``.
"""

from __future__ import annotations

from rich.text import Text

from cloudsync.drift import DriftKind, DriftReport
from cloudsync.plan.comment import DEFAULT_BUDGET, Comment, code, escape, marker
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text

STYLES = {
    DriftKind.VALUE: "red", DriftKind.METADATA: "yellow", DriftKind.ACCESS: "red",
    DriftKind.MISSING: "red", DriftKind.ORPHAN: "yellow", DriftKind.UNMANAGED: "cyan", DriftKind.INHERITED: "red",
}


def summary_line(report: DriftReport) -> str:
    s = report.summary()
    kinds = ", ".join(f"{s[k.value]} {k.value}" for k in DriftKind if s[k.value])
    if not report.drifted:
        return f"No drift in {s['checked']} secrets checked ({s['ignored']} ignored)."
    return f"Drift: {s['total']} ({kinds}); {s['ignored']} ignored."


def render_drift_text(report: DriftReport) -> Text:
    out = Text()
    targets = ", ".join(safe_text(t, NAME_LIMIT) for t in report.targets)
    out.append(f"cloudsync drift for stack {safe_text(report.stack, NAME_LIMIT)} (targets: {targets})\n\n")
    addresses = [safe_text(d.address, NAME_LIMIT) for d in report.drifted]
    width = max((len(a) for a in addresses), default=0)
    for item, address in zip(report.drifted, addresses, strict=True):
        out.append(f"  {item.kind.value:<10}", style=STYLES[item.kind])
        out.append(f"{address:<{width}}  ")
        out.append(f"{safe_text(item.detail, TEXT_LIMIT)}\n", style="dim")
    if report.drifted:
        out.append("\n")
    out.append(summary_line(report) + "\n", style="bold")
    return out


def render_drift_markdown(report: DriftReport, budget: int = DEFAULT_BUDGET) -> str:
    s = report.summary()
    doc = Comment(budget)
    doc.add(marker("drift", report.stack), f"### cloudsync drift: {code(report.stack)}", "",
            "| " + " | ".join(k.value for k in DriftKind) + " | ignored | checked |",
            "|" + "---:|" * (len(DriftKind) + 2),
            "| " + " | ".join(str(s[k.value]) for k in DriftKind) + f" | {s['ignored']} | {s['checked']} |", "")
    if not report.drifted:
        doc.add("No drift.")
    for kind in DriftKind:
        items = [d for d in report.drifted if d.kind is kind]
        if items:
            rows = [f"| {code(d.address)} | {escape(d.detail)} |" for d in items]
            doc.section(f"{kind.value} ({len(items)})", ["| address | detail |", "|---|---|"], rows)
    for diag in report.diagnostics[:20]:
        doc.add(f"> **{diag.severity.value}**: {escape(diag.message)}")
    return doc.text()

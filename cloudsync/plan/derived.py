"""Values derived from other secrets follow them within one apply.

A ``from`` or ``public_key_of`` value is read from another secret of this stack. When the
plan writes that secret's value (it is new, rotated or changed), reading it at plan time
would give the old value (or none), and the dependent would lag one apply behind. Such
dependents are planned as ``derived``: apply computes them from the value it writes.
"""

from __future__ import annotations

from dataclasses import replace

from cloudsync.config.loader import Stack
from cloudsync.plan.model import REASON_ORDER, Action, Change, Plan, Reason, ValueMode, ValuePlan
from cloudsync.values.dependencies import dependencies


def follow_sources(plan: Plan, stack: Stack) -> None:
    """Turn the changes of dependents of written values into ``derived`` value writes, in place."""
    declared = stack.by_name
    sourced = {name: [dep for dep, _ in dependencies(decl, declared)]
               for name, decl in declared.items()
               if decl.decl.value is not None and decl.decl.value.kind in ("from", "public_key_of")}
    if not sourced:
        return
    writing = {c.secret for c in plan.changes if c.writes_value}
    changed = True
    while changed:  # chains (a key, its public half, a copy of that) settle in a few rounds
        changed = False
        for i, change in enumerate(plan.changes):
            deps = [d for d in sourced.get(change.secret, ()) if d in writing]
            if not deps or change.action is Action.DELETE or _is_derived(change):
                continue
            plan.changes[i] = _derived(change, deps)
            writing.add(change.secret)
            changed = True


def _is_derived(change: Change) -> bool:
    return change.value is not None and change.value.mode is ValueMode.DERIVED


def _derived(change: Change, deps: list[str]) -> Change:
    reasons = set(change.reasons) | {Reason.VALUE}
    action = Action.UPDATE if change.action is Action.NOOP else change.action
    details = [d for d in change.details if not d.startswith("value:")]
    details.append(f"value: follows {', '.join(deps)}, which this apply writes")
    return replace(change, action=action, reasons=tuple(sorted(reasons, key=REASON_ORDER.index)),
                   value=ValuePlan(ValueMode.DERIVED), details=tuple(details))

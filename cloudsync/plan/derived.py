"""Values derived from other secrets follow them within one apply, in order.

A ``from`` or ``public_key_of`` value is read from another secret of this stack. When the
plan writes that secret's value (it is new, rotated, replaced or changed), reading it at plan
time would give the old value (or none), and the dependent would lag one apply behind. Such
dependents are planned as ``derived``: apply computes them from the value it writes.

A certificate signed by a CA that this plan gives a new value is reissued in the same apply
(never left signed by a CA that is being replaced).

Each written dependent records what it ``follows``, and apply runs it only after those
writes applied: the new CA, then its public halves and trust bundles, then the leaf
certificates, so no consumer gets a certificate before the trust that verifies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from cloudsync.config.loader import Declaration, Stack
from cloudsync.plan.model import REASON_ORDER, Action, Change, Plan, Reason, ValueMode, ValuePlan
from cloudsync.plan.planner import grace_note
from cloudsync.values.dependencies import dependencies
from cloudsync.values.generate import issuer_of, spec_digest
from cloudsync.values.spec import generate_spec


def follow_sources(plan: Plan, stack: Stack) -> None:
    """Turn the changes of dependents of written values into value writes that follow them, in place."""
    declared = stack.by_name
    deps = {name: [dep for dep, _ in dependencies(decl, declared)] for name, decl in declared.items()}
    if not any(deps.values()):
        return
    sourced = {name for name, decl in declared.items()
               if decl.decl.value is not None and decl.decl.value.kind in ("from", "public_key_of")}
    issuers = {name: ca for name in declared if (spec := generate_spec(declared[name])) is not None
               and (ca := issuer_of(spec)) is not None and ca in declared}
    writing = {c.secret for c in plan.changes if c.writes_value}
    fresh = {c.secret for c in plan.changes if c.value is not None and c.value.mode is ValueMode.GENERATE}
    graces = {c.secret: c.value.grace for c in plan.changes if c.value is not None and c.value.grace is not None}
    changed = True
    while changed:  # chains (a key, its public half, a copy of that) settle in a few rounds
        changed = False
        for i, change in enumerate(plan.changes):
            if change.action is Action.DELETE:
                continue
            if change.secret in sourced and not _is_derived(change):
                written = [d for d in deps[change.secret] if d in writing]
                if written:
                    plan.changes[i] = _derived(change, written, _grace(graces, change.secret, written))
                    writing.add(change.secret)
                    changed = True
            elif issuers.get(change.secret) in fresh and not _reissued(change):
                ca = issuers[change.secret]
                plan.changes[i] = _reissue(change, ca, declared, _grace(graces, change.secret, [ca]))
                writing.add(change.secret)
                fresh.add(change.secret)
                changed = True
    halves: dict[str, set[str]] = {}  # secret -> its public halves and trust bundles that this plan writes
    for name, decl in declared.items():
        if decl.decl.value is not None and decl.decl.value.public_key_of is not None and name in writing:
            halves.setdefault(decl.decl.value.public_key_of.secret, set()).add(name)
    for i, change in enumerate(plan.changes):
        if not change.writes_value:
            continue
        after = {d for d in deps.get(change.secret, ()) if d in writing}
        ca = issuers.get(change.secret)
        if ca is not None and ca in writing:  # the trust (CA certificate, bundles) lands before the leaf
            after |= halves.get(ca, set())
        if after:
            plan.changes[i] = replace(change, follows=tuple(sorted(after)))


def _is_derived(change: Change) -> bool:
    return change.value is not None and change.value.mode is ValueMode.DERIVED


def _reissued(change: Change) -> bool:
    return change.value is not None and change.value.mode is ValueMode.GENERATE


def _grace(graces: dict[str, timedelta], secret: str, sources: list[str]) -> timedelta | None:
    """The ``--grace`` of the replaced values ``secret`` follows, now also its own (a bundle keeps old CAs that long)."""
    grace = min((graces[s] for s in sources if s in graces), default=None)
    if grace is not None:
        graces[secret] = grace
    return grace


def _derived(change: Change, deps: list[str], grace: timedelta | None = None) -> Change:
    reasons = set(change.reasons) | {Reason.VALUE}
    action = Action.UPDATE if change.action is Action.NOOP else change.action
    details = [d for d in change.details if not d.startswith("value:")]
    details.append(f"value: follows {', '.join(deps)}, which this apply writes" + grace_note(grace))
    return replace(change, action=action, reasons=tuple(sorted(reasons, key=REASON_ORDER.index)),
                   value=ValuePlan(ValueMode.DERIVED, grace=grace), details=tuple(details))


def _reissue(change: Change, ca: str, declared: Mapping[str, Declaration], grace: timedelta | None) -> Change:
    """A certificate of a CA that this apply renews or replaces: a new one, signed by the new CA."""
    spec = generate_spec(declared[change.secret])
    assert spec is not None  # only generated certificates have an issuer
    digest = spec_digest(spec, lambda name: generate_spec(declared.get(name)))
    details = [d for d in change.details if not d.startswith("value:")]
    details.append(f"value: reissued, signed by the new value of its CA {ca}, which this apply writes" + grace_note(grace))
    return replace(change, action=Action.UPDATE if change.action is Action.NOOP else change.action,
                   reasons=tuple(sorted({*change.reasons, Reason.ROTATION}, key=REASON_ORDER.index)),
                   value=ValuePlan(ValueMode.GENERATE, spec=digest, regenerate=True, grace=grace),
                   details=tuple(details))

"""Evaluate policies over a stack: one input document per secret × target, fail closed.

The documents are built here and evaluated in the budgeted evaluator process
(:mod:`cloudsync.policy.celworker` explains how it batches them): one job per run, one
task per enabled policy. A policy that reads no target variable runs once per secret and
its result is shared by the secret's targets (the violation is still reported per address).

Fail closed: a document whose match or rule errors, or gives no boolean, is a violation
that says why; a policy that spends its time or memory budget (or crashes the evaluator)
is a violation at every address it covers, and a diagnostic at the policy's line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudsync.access.model import principal_names, reader_documents
from cloudsync.config.checks import effective_readers, remote_name
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Severity
from cloudsync.gc_pause import gc_paused
from cloudsync.policy.budget import Batch, Budget, Spent
from cloudsync.policy.document import (
    CHANGE_SCHEMA,
    REMOTE_SCHEMA,
    SECRET_SCHEMA,
    TARGET_SCHEMA,
    change_document,
    input_schema,
    now_text,
    principals_document,
    pruned,
    remote_document,
    resolved_ids,
    secret_document,
    stack_document,
    target_document,
)
from cloudsync.policy.loader import PolicySet, load_policies, policy_dirs
from cloudsync.policy.model import PolicyReport, Violation
from cloudsync.policy.references import needs, rewrite
from cloudsync.policy.settings import EnabledPolicy, enabled_policies
from cloudsync.policy.waivers import apply_waivers, expired_warnings
from cloudsync.safe_text import safe_text

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration, Stack
    from cloudsync.plan.build import PlanRun

# What each input variable becomes in a batch program, where cs__i is the item's index.
_PER_SECRET_NAMES = {"secret": "cs__S[cs__i]"}
# Roots only a plan gives; a policy that reads neither can run before the plan exists.
_RUN_ROOTS = frozenset({"change", "remote"})
_PER_TARGET_NAMES = {"secret": "cs__S[cs__Ts[cs__i]]", "target": "cs__TG[cs__Tt[cs__i]]",
                     "change": "cs__Tc[cs__i]", "remote": "cs__Tr[cs__i]"}


@dataclass(frozen=True)
class TargetInput:
    """The target-dependent variables of one document."""

    target: dict[str, Any]
    change: dict[str, Any] | None = None
    remote: dict[str, Any] | None = None


class _Documents:
    """One run's documents as the batch context holds them, and their Python originals."""

    def __init__(self, secrets: Sequence[Mapping[str, Any]], targets: Sequence[Sequence[TargetInput]]) -> None:
        pairs = [(s, list(t)) for s, t in zip(secrets, targets, strict=True) if t]
        self.secrets = [s if isinstance(s, dict) else dict(s) for s, _ in pairs]
        self.targets_of = [t for _, t in pairs]
        self.entries: list[tuple[int, TargetInput]] = []  # (secret index, target input)
        self.target_docs: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        # Entries as parallel lists: plain ints convert far faster than one map per entry.
        of_secret: list[int] = []
        of_target: list[int] = []
        changes: list[dict[str, Any] | None] = []
        remotes: list[dict[str, Any] | None] = []
        for i, tins in enumerate(self.targets_of):
            for tin in tins:
                name = str(tin.target.get("name", ""))
                if name not in index:
                    index[name] = len(self.target_docs)
                    self.target_docs.append(tin.target)
                self.entries.append((i, tin))
                of_secret.append(i)
                of_target.append(index[name])
                changes.append(tin.change)
                remotes.append(tin.remote)
        self.columns: dict[str, list[Any]] = {"cs__Ts": of_secret, "cs__Tt": of_target, "cs__Tc": changes,
                                              "cs__Tr": remotes}

    def count(self, per_target: bool) -> int:
        return len(self.entries) if per_target else len(self.secrets)

    def addresses(self, item: int, per_target: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(secret, target) documents an item's outcome applies to."""
        if per_target:
            s, tin = self.entries[item]
            return [(self.secrets[s], tin.target)]
        return [(self.secrets[item], tin.target) for tin in self.targets_of[item]]


class Evaluator:
    """Runs enabled policies over documents; never lets an error pass as compliance."""

    def __init__(self, enabled: Sequence[EnabledPolicy], *, principals: Mapping[str, Any],
                 stack: Mapping[str, Any], now: str, budget: Budget | None = None) -> None:
        self.enabled = list(enabled)
        self.constants = {"principals": dict(principals), "stack": dict(stack), "now": now}
        # Documents carry only what some enabled policy reads: every field costs pickling,
        # and converting it into CEL, in the evaluator (most of a run's cost at 10,000 secrets).
        sources = [source for e in self.enabled for source in (e.compiled.policy.match, e.compiled.policy.rule)
                   if source is not None]
        self.need = needs(sources, input_schema()["properties"])
        self.budget = budget or Budget.from_env()
        self.evaluated = 0
        self.diagnostics: list[Diagnostic] = []  # one per policy that spent a budget

    def evaluate(self, secrets: Sequence[Mapping[str, Any]],
                 targets: Sequence[Sequence[TargetInput]]) -> list[Violation]:
        """Evaluate every enabled policy for ``secrets[i]`` in each of ``targets[i]``."""
        return self.finish(self.start(secrets, targets))

    def start(self, secrets: Sequence[Mapping[str, Any]], targets: Sequence[Sequence[TargetInput]], *,
              later: bool = False) -> Started:
        """Send the documents to the evaluator and return without waiting for it.

        With ``later``, each target's change and remote are not known yet (the plan is being
        built): the policies that read neither run now, the others once :meth:`finish` gives them.
        """
        docs = _Documents(secrets, targets)
        self.evaluated += len(docs.entries)
        started = Started(docs, Batch(self.budget), [], [], later)
        if not docs.entries or not self.enabled:
            return started
        for k, enabled in enumerate(self.enabled):
            (started.after if later and enabled.compiled.roots & _RUN_ROOTS else started.first).append(k)
        need = self.need
        memo: dict[int, tuple[Any, Any]] = {}  # parts shared between documents stay shared
        columns = {"cs__Ts": docs.columns["cs__Ts"], "cs__Tt": docs.columns["cs__Tt"]}
        if not later:
            columns.update(self._run_columns(docs.columns["cs__Tc"], docs.columns["cs__Tr"]))
        setup = {"constants": self.constants, "columns": columns,
                 "secrets": [pruned(s, need.get("secret", {}), SECRET_SCHEMA, memo) for s in docs.secrets],
                 "targets": [pruned(t, need.get("target", {}), TARGET_SCHEMA) for t in docs.target_docs],
                 "params": [dict(e.params) for e in self.enabled]}
        started.batch.submit(setup, [("policy", _task(self.enabled[k], k)) for k in started.first])
        return started

    def _run_columns(self, changes: Sequence[dict[str, Any] | None],
                     remotes: Sequence[dict[str, Any] | None]) -> dict[str, list[Any]]:
        need = self.need
        return {"cs__Tc": [pruned(c, need.get("change", {}), CHANGE_SCHEMA) for c in changes],
                "cs__Tr": [pruned(r, need.get("remote", {}), REMOTE_SCHEMA) for r in remotes]}

    def finish(self, started: Started, changes: Sequence[dict[str, Any] | None] = (),
               remotes: Sequence[dict[str, Any] | None] = ()) -> list[Violation]:
        """The violations of a started evaluation; with ``later``, ``changes`` and ``remotes`` are per entry."""
        docs = started.docs
        if not docs.entries or not self.enabled:
            return []
        if started.later:
            empty = [None] * len(docs.entries)
            started.batch.submit({"columns": self._run_columns(changes or empty, remotes or empty)},
                                 [("policy", _task(self.enabled[k], k)) for k in started.after])
        results = dict(zip([*started.first, *started.after], started.batch.collect(), strict=True))
        found: list[Violation] = []
        for k, enabled in enumerate(self.enabled):
            result = results[k]
            per_target = enabled.compiled.per_target
            if isinstance(result, Spent):
                self.diagnostics.append(_spent_diagnostic(enabled, result))
                outcomes = dict.fromkeys(range(docs.count(per_target)), f"{result.reason}")
            else:
                outcomes = result
            for item, outcome in sorted(outcomes.items()):
                found += [_violation(enabled, outcome, secret, target)
                          for secret, target in docs.addresses(item, per_target)]
        return found


@dataclass
class Started:
    """An evaluation sent to the evaluator: the policies sent with the documents, and those
    that wait for the plan's changes and remotes."""

    docs: _Documents
    batch: Batch
    first: list[int]
    after: list[int]
    later: bool


def _task(enabled: EnabledPolicy, k: int) -> dict[str, Any]:
    """What the evaluator needs to run one policy: its batch program and its own expressions."""
    compiled = enabled.compiled
    names = dict(_PER_TARGET_NAMES if compiled.per_target else _PER_SECRET_NAMES, params=f"cs__P[{k}]")
    policy = compiled.policy
    rule = f"({rewrite(policy.rule, names)})"
    test = f"({rewrite(policy.match, names)}) ? {rule} : true" if policy.match else rule
    return {"batch": f"cs__chunk.filter(cs__i, !({test}))", "match": policy.match, "rule": policy.rule,
            "per_target": compiled.per_target, "k": k}


def _spent_diagnostic(enabled: EnabledPolicy, spent: Spent) -> Diagnostic:
    policy = enabled.compiled.policy
    return Diagnostic(f"policy {policy.id} could not be evaluated and counts as violated: {spent.reason}",
                      Severity.ERROR if policy.severity == "error" else Severity.WARNING,
                      file=policy.file or None, line=policy.line or None,
                      hint="a rule's cost must not grow with the product of lists; see 'Budgets' in docs/policy.md")


def _violation(enabled: EnabledPolicy, outcome: str, secret: Mapping[str, Any],
               target: Mapping[str, Any]) -> Violation:
    policy = enabled.compiled.policy
    name, tname = str(secret.get("name", "")), str(target.get("name", ""))
    address = f"{tname}:{name}"
    if outcome:
        message = f"policy {policy.id} could not be evaluated, so it counts as violated: {outcome}"
    else:
        # Parameters are shown bounded: a list of a thousand long strings must not become every message.
        shown = {key: safe_text(value, 200) for key, value in enabled.params.items()}
        try:
            message = policy.message.format_map({**shown, "secret": name, "target": tname, "address": address})
        except (KeyError, ValueError, IndexError):
            message = policy.message
    line = secret.get("line")
    file = secret.get("file")
    return Violation(policy=policy.id, title=policy.title, severity=policy.severity, address=address, secret=name,
                     target=tname, message=message, file=file if isinstance(file, str) else None,
                     line=line if isinstance(line, int) else None)


def moment(today: date | None) -> tuple[date, datetime]:
    """``today`` and ``now``: midnight UTC of ``today`` when given (reproducible runs)."""
    if today is None:
        now = datetime.now(UTC).replace(microsecond=0)
        return now.date(), now
    return today, datetime.combine(today, time(0), tzinfo=UTC)


def _sort_key(v: Violation) -> tuple[str, int, str, str]:
    return (v.file or "", v.line or 0, v.policy, v.address)


def load_enabled(stack: Stack, extra_dirs: Sequence[Path] = (),
                 budget: Budget | None = None) -> tuple[PolicySet, list[EnabledPolicy]]:
    """The stack's policies loaded and checked, with its settings applied; CloudsyncError with every problem."""
    config = stack.config
    missing = [stack.smap.at(("policy", "dirs", i), f"policy folder {d!r} does not exist",
                             hint="policy.dirs are relative to the stack folder")
               for i, d in enumerate(config.policy.dirs) if not (stack.root / d).is_dir()]
    if missing:
        raise CloudsyncError(missing)
    dirs = policy_dirs(stack.root, config.policy.dirs, extra_dirs, builtin=config.policy.builtin)
    policy_set = load_policies(dirs, budget)
    return policy_set, enabled_policies(policy_set.policies, config.policy, stack.smap)


def check_files(stack: Stack, extra_dirs: Sequence[Path] = (), *, today: date | None = None) -> list[Diagnostic]:
    """Every policy check that needs the files alone (what ``validate`` runs): policies load and
    compile, parameters have their declared types, waivers name known policies. Returns the
    warnings (expired waivers); raises CloudsyncError on errors."""
    policy_set, _ = load_enabled(stack, extra_dirs)
    return expired_warnings(policy_set.waivers, moment(today)[0])


def evaluate(stack: Stack, run: PlanRun | None = None, *, extra_dirs: Sequence[Path] = (),
             today: date | None = None) -> PolicyReport:
    """Evaluate every enabled policy per secret × target of ``stack``.

    With ``run``, only the planned addresses are evaluated, with their planned change and
    the actual remote metadata; without it (``policy check``), the desired state only.
    Raises CloudsyncError for problems in policy files or in the stack's policy settings.
    """
    scope = None if run is None else _planned(run)
    return Evaluation(stack, scope, extra_dirs=extra_dirs, today=today).finish(run)


def begin(stack: Stack, targets: Sequence[str], *, extra_dirs: Sequence[Path] = (),
          today: date | None = None) -> Evaluation:
    """Start evaluating the plan of ``targets`` before it is built; :meth:`Evaluation.finish` gives the report.

    What :func:`evaluate` with the plan would report, sooner: the evaluator converts the
    declared secrets' documents and runs the policies that read no change or remote while
    this process builds the plan (on a second core).
    """
    chosen = set(targets)
    with gc_paused():  # a burst of allocations over a large heap (see cloudsync.gc_pause)
        scope = {(t, d.decl.name) for d in stack.secrets for t in d.decl.targets if t in chosen}
    return Evaluation(stack, scope, extra_dirs=extra_dirs, today=today)


def _planned(run: PlanRun) -> set[tuple[str, str]]:
    with gc_paused():
        return {(d.target, d.secret) for d in run.desired}


class Evaluation:
    """Policies loaded, documents of the secrets in a scope sent to the evaluator, the report pending.

    ``scope`` holds the (target, secret) pairs to evaluate; None means every declared pair
    (the desired state alone, without a plan).
    """

    def __init__(self, stack: Stack, scope: set[tuple[str, str]] | None, *, extra_dirs: Sequence[Path] = (),
                 today: date | None = None) -> None:
        self.stack, self.scope, self.extra_dirs, self.today = stack, scope, extra_dirs, today
        self.error: CloudsyncError | None = None
        try:
            budget = Budget.from_env()
            self.policy_set, self.enabled = load_enabled(stack, extra_dirs, budget)
        except CloudsyncError as exc:
            self.error = exc  # raised by finish: a plan's own errors are reported first, as without begin
            return
        self.day, now = moment(today)
        self.evaluator = Evaluator(self.enabled, principals=principals_document(stack.config),
                                   stack=stack_document(stack), now=now_text(now), budget=budget)
        # With a scope, a plan will come: the change and remote are documents of it, if read at all.
        self.later = scope is not None and bool(_RUN_ROOTS & set(self.evaluator.need))
        with gc_paused():
            self.pairs, self.started = self._start()

    def _start(self) -> tuple[list[tuple[Declaration, str]], Started]:
        """Build each secret's documents (its targets' change and remote come later) and send them."""
        stack, scope, evaluator = self.stack, self.scope, self.evaluator
        targets = {name: target_document(name, cfg) for name, cfg in stack.config.targets.items()}
        ids = resolved_ids(stack.config)
        secrets: list[dict[str, Any]] = []
        inputs: list[list[TargetInput]] = []
        pairs: list[tuple[Declaration, str]] = []
        # Pruned as they are built, so a run never holds every full document at once (the
        # evaluator prunes again, to exactly what is read: the name, file and line stay here
        # for the violations).
        need_secret = evaluator.need.get("secret", {})
        if need_secret is not None:
            need_secret = {**need_secret, **dict.fromkeys(("name", "file", "line"))}
        shared: dict[Any, Any] = {}  # equal parts of documents, built once (see secret_document)
        memo: dict[int, tuple[Any, Any]] = {}  # and pruned once
        for decl in stack.secrets:
            name = decl.decl.name
            tins = [TargetInput(targets[t]) for t in decl.decl.targets
                    if t in targets and (scope is None or (t, name) in scope)]
            if tins:
                pairs += [(decl, str(tin.target["name"])) for tin in tins]
                secrets.append(pruned(secret_document(stack, decl, ids, shared), need_secret, SECRET_SCHEMA, memo))
                inputs.append(tins)
        return pairs, evaluator.start(secrets, inputs, later=self.later)

    def finish(self, run: PlanRun | None) -> PolicyReport:
        """The report, with ``run``'s changes and remotes (None: the desired state only)."""
        if self.error is not None:
            raise self.error
        if run is not None and self.scope != _planned(run):  # the plan covers other pairs than foreseen
            return Evaluation(self.stack, _planned(run), extra_dirs=self.extra_dirs, today=self.today).finish(run)
        enabled = self.enabled
        with gc_paused():
            changes, remotes = self._run_documents(run) if self.later and run is not None else ((), ())
            found = self.evaluator.finish(self.started, changes, remotes)
            evaluated = [(decl.decl.name, target) for decl, target in self.pairs]
            kept, waived, diags = apply_waivers(found, self.policy_set.waivers, self.day, evaluated,
                                                [d.decl.name for d in self.stack.secrets],
                                                [e.compiled.policy.id for e in enabled])
        return PolicyReport(violations=sorted(kept, key=_sort_key), waived=sorted(waived, key=_sort_key),
                            diagnostics=[*self.evaluator.diagnostics, *diags],
                            policies=[e.compiled.policy for e in enabled],
                            parameters={e.compiled.policy.id: dict(e.params) for e in enabled},
                            evaluated=self.evaluator.evaluated)

    def _run_documents(self, run: PlanRun) -> tuple[list[dict[str, Any] | None], list[dict[str, Any] | None]]:
        """Each pair's change and remote documents, pruned to what the policies read."""
        stack, need = self.stack, self.evaluator.need
        config = stack.config
        changes = {c.address: c for c in run.plan.changes}
        names = principal_names(config, config.targets)
        # A root no enabled policy reads is not built at all (None: no rule can tell); the
        # access scan's readers are the costliest part of a document.
        reads_change, reads_remote = "change" in need, "remote" in need
        need_change, need_remote = need.get("change", {}), need.get("remote", {})
        change_docs: list[dict[str, Any] | None] = []
        remote_docs: list[dict[str, Any] | None] = []
        for decl, target in self.pairs:
            change = changes.get(f"{target}:{decl.decl.name}")
            remote_key = change.remote_name if change else remote_name(decl, target, config.targets[target].provider)
            remote = run.actual.get(target, {}).get(remote_key)
            scan = run.access.get(target)
            effective = (reader_documents(scan.readers_of(remote_key), names.get(target, {}),
                                          effective_readers(stack, decl)) if scan is not None and reads_remote else [])
            complete = scan is not None and scan.complete_for(remote_key)
            change_docs.append(pruned(change_document(change), need_change, CHANGE_SCHEMA) if reads_change else None)
            remote_docs.append(pruned(remote_document(remote, effective, complete), need_remote, REMOTE_SCHEMA)
                               if reads_remote else None)
        return change_docs, remote_docs

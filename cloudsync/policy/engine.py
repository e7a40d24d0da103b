"""Evaluate policies over a stack: one input document per secret × target, fail closed.

How it stays fast: the CEL binding rebuilds its environment whenever a variable
changes, so swapping the document per evaluation would copy everything each time.
Instead every document goes into one context that is built once (``cs__S`` secrets,
``cs__Ts``/``cs__Tt``/``cs__Tc``/``cs__Tr`` the secret, target, change and remote of each
secret × target entry, ``cs__TG`` targets, ``cs__P`` parameters) and each
policy's ``match``/``rule`` is compiled once per run into a batch program,
``cs__chunk.filter(cs__i, !(match ? rule : true))``, with the input variables
rewritten to index those lists. The chunk of indices (128) arrives through the
context's variable resolver, which does not invalidate the environment. A policy that
reads no target variable runs once per secret and its result is shared by the secret's
targets (the violation is still reported per address).

Fail closed: when a batch raises (an error, a panic, a non-boolean result), its
documents are evaluated one by one with the policy's own programs, compiled at load
time, and each failing one becomes a violation that says why.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cel

from cloudsync.access.model import principal_names, reader_documents
from cloudsync.config.checks import effective_readers, remote_name
from cloudsync.diagnostics import CloudsyncError
from cloudsync.policy.document import (
    change_document,
    now_text,
    principals_document,
    remote_document,
    resolved_ids,
    secret_document,
    stack_document,
    target_document,
)
from cloudsync.policy.loader import load_policies, policy_dirs
from cloudsync.policy.model import PolicyReport, Violation
from cloudsync.policy.references import rewrite
from cloudsync.policy.settings import EnabledPolicy, enabled_policies
from cloudsync.policy.waivers import apply_waivers

if TYPE_CHECKING:
    from cloudsync.config.loader import Stack
    from cloudsync.plan.build import PlanRun
    from cloudsync.plan.model import Change

# What each input variable becomes in a batch program, where cs__i is the item's index.
_PER_SECRET_NAMES = {"secret": "cs__S[cs__i]"}
_PER_TARGET_NAMES = {"secret": "cs__S[cs__Ts[cs__i]]", "target": "cs__TG[cs__Tt[cs__i]]",
                     "change": "cs__Tc[cs__i]", "remote": "cs__Tr[cs__i]"}
CHUNK = 128  # documents per batch: bounds CEL's quadratic filter cost when many violate
# Never swallowed while failing closed (a pyo3 PanicException derives from BaseException).
_FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)


@dataclass(frozen=True)
class TargetInput:
    """The target-dependent variables of one document."""

    target: dict[str, Any]
    change: dict[str, Any] | None = None
    remote: dict[str, Any] | None = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    first = (str(exc).splitlines() or [""])[0].strip()
    if len(first) > 160:
        first = first[:157] + "..."
    name = exc.__class__.__name__
    return f"{name}: {first}" if first else name


def _context(constants: Mapping[str, Any], resolve: Callable[[str], Any]) -> cel.Context:
    ctx = cel.Context()
    for name, value in constants.items():
        ctx.add_variable(name, value)
    ctx.set_variable_resolver(resolve)
    return ctx


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

    def variables(self, item: int, per_target: bool, params: Mapping[str, Any]) -> dict[str, Any]:
        """The input variables of one item, for evaluating it on its own."""
        if per_target:
            s, tin = self.entries[item]
            return {"secret": self.secrets[s], "target": tin.target, "change": tin.change, "remote": tin.remote,
                    "params": dict(params)}
        return {"secret": self.secrets[item], "params": dict(params)}

    def addresses(self, item: int, per_target: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(secret, target) documents an item's outcome applies to."""
        if per_target:
            s, tin = self.entries[item]
            return [(self.secrets[s], tin.target)]
        return [(self.secrets[item], tin.target) for tin in self.targets_of[item]]


class Evaluator:
    """Runs enabled policies over documents; never lets an error pass as compliance."""

    def __init__(self, enabled: Sequence[EnabledPolicy], *, principals: Mapping[str, Any],
                 stack: Mapping[str, Any], now: str) -> None:
        self.enabled = list(enabled)
        self.constants = {"principals": dict(principals), "stack": dict(stack), "now": now}
        self.evaluated = 0

    def evaluate(self, secrets: Sequence[Mapping[str, Any]],
                 targets: Sequence[Sequence[TargetInput]]) -> list[Violation]:
        """Evaluate every enabled policy for ``secrets[i]`` in each of ``targets[i]``."""
        docs = _Documents(secrets, targets)
        self.evaluated += len(docs.entries)
        if not docs.entries:
            return []
        batch_input: dict[str, Any] = {}
        batch = _context({**self.constants, **docs.columns, "cs__S": docs.secrets, "cs__TG": docs.target_docs,
                          "cs__P": [dict(e.params) for e in self.enabled]}, batch_input.get)
        single_input: dict[str, Any] = {}
        single: cel.Context | None = None  # built on first need: it converts the principals again

        found: list[Violation] = []
        for k, enabled in enumerate(self.enabled):
            per_target = enabled.compiled.per_target
            program = _batch_program(enabled, k)
            count = docs.count(per_target)
            for lo in range(0, count, CHUNK):
                chunk = list(range(lo, min(lo + CHUNK, count)))
                outcomes = _run_batch(program, batch, batch_input, chunk)
                if outcomes is None:  # the batch raised: judge its documents one by one
                    outcomes = {}
                    if single is None:
                        single = _context({**self.constants, "change": None, "remote": None}, single_input.get)
                    for item in chunk:
                        single_input.clear()
                        single_input.update(docs.variables(item, per_target, enabled.params))
                        outcome = _outcome(enabled, single)
                        if outcome is not None:
                            outcomes[item] = outcome
                for item, outcome in outcomes.items():
                    found += [_violation(enabled, outcome, secret, target)
                              for secret, target in docs.addresses(item, per_target)]
        return found


def _batch_program(enabled: EnabledPolicy, k: int) -> cel.Program | None:
    compiled = enabled.compiled
    names = dict(_PER_TARGET_NAMES if compiled.per_target else _PER_SECRET_NAMES, params=f"cs__P[{k}]")
    policy = compiled.policy
    rule = f"({rewrite(policy.rule, names)})"
    test = f"({rewrite(policy.match, names)}) ? {rule} : true" if policy.match else rule
    try:
        return cel.compile(f"cs__chunk.filter(cs__i, !({test}))")
    except ValueError:  # pragma: no cover - the rewrite keeps valid CEL valid; fall back if not
        return None


def _run_batch(program: cel.Program | None, ctx: cel.Context, batch_input: dict[str, Any],
               chunk: list[int]) -> dict[int, str] | None:
    """Indices in ``chunk`` whose rule is false, or None when the batch raised."""
    if program is None:
        return None
    batch_input["cs__chunk"] = chunk
    try:
        failing = program.execute(ctx)
    except BaseException as exc:
        if isinstance(exc, _FATAL):
            raise
        return None
    return dict.fromkeys(failing, "")


def _outcome(enabled: EnabledPolicy, ctx: cel.Context) -> str | None:
    """One document: None when compliant or not matched; "" when the rule is false; else why it failed."""
    compiled = enabled.compiled
    part = "match"
    try:
        if compiled.match is not None:
            matched = compiled.match.execute(ctx)
            if matched is False:
                return None
            if matched is not True:
                return f"its match gave a {type(matched).__name__} value, not true or false"
        part = "rule"
        result = compiled.rule.execute(ctx)
    except BaseException as exc:
        if isinstance(exc, _FATAL):
            raise
        return f"its {part} failed: {_describe(exc)}"
    if result is True:
        return None
    if result is False:
        return ""
    return f"its rule gave a {type(result).__name__} value, not true or false"


def _violation(enabled: EnabledPolicy, outcome: str, secret: Mapping[str, Any],
               target: Mapping[str, Any]) -> Violation:
    policy = enabled.compiled.policy
    name, tname = str(secret.get("name", "")), str(target.get("name", ""))
    address = f"{tname}:{name}"
    if outcome:
        message = f"policy {policy.id} could not be evaluated, so it counts as violated: {outcome}"
    else:
        try:
            message = policy.message.format_map({**enabled.params, "secret": name, "target": tname,
                                                 "address": address})
        except (KeyError, ValueError, IndexError):
            message = policy.message
    line = secret.get("line")
    file = secret.get("file")
    return Violation(policy=policy.id, title=policy.title, severity=policy.severity, address=address, secret=name,
                     target=tname, message=message, file=file if isinstance(file, str) else None,
                     line=line if isinstance(line, int) else None)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while documents are built and evaluated.

    A run allocates hundreds of thousands of small dicts and lists; each allocation burst
    triggers collections that walk the whole heap (the loaded stack included), a quarter
    of the run's CPU at 10,000 secrets. The engine makes no reference cycles, so reference
    counting frees everything; the collector's previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def moment(today: date | None) -> tuple[date, datetime]:
    """``today`` and ``now``: midnight UTC of ``today`` when given (reproducible runs)."""
    if today is None:
        now = datetime.now(UTC).replace(microsecond=0)
        return now.date(), now
    return today, datetime.combine(today, time(0), tzinfo=UTC)


def _sort_key(v: Violation) -> tuple[str, int, str, str]:
    return (v.file or "", v.line or 0, v.policy, v.address)


def evaluate(stack: Stack, run: PlanRun | None = None, *, extra_dirs: Sequence[Path] = (),
             today: date | None = None) -> PolicyReport:
    """Evaluate every enabled policy per secret × target of ``stack``.

    With ``run``, only the planned addresses are evaluated, with their planned change and
    the actual remote metadata; without it (``policy check``), the desired state only.
    Raises CloudsyncError for problems in policy files or in the stack's policy settings.
    """
    config = stack.config
    missing = [stack.smap.at(("policy", "dirs", i), f"policy folder {d!r} does not exist",
                             hint="policy.dirs are relative to the stack folder")
               for i, d in enumerate(config.policy.dirs) if not (stack.root / d).is_dir()]
    if missing:
        raise CloudsyncError(missing)
    policy_set = load_policies(policy_dirs(stack.root, config.policy.dirs, extra_dirs, builtin=config.policy.builtin))
    enabled = enabled_policies(policy_set.policies, config.policy, stack.smap)
    day, now = moment(today)
    evaluator = Evaluator(enabled, principals=principals_document(config), stack=stack_document(stack),
                          now=now_text(now))
    with _gc_paused():
        found, evaluated = _evaluate_documents(stack, run, evaluator)
    kept, waived, diags = apply_waivers(found, policy_set.waivers, day, evaluated,
                                        [d.decl.name for d in stack.secrets], [e.compiled.policy.id for e in enabled])
    return PolicyReport(violations=sorted(kept, key=_sort_key), waived=sorted(waived, key=_sort_key),
                        diagnostics=diags, policies=[e.compiled.policy for e in enabled],
                        parameters={e.compiled.policy.id: dict(e.params) for e in enabled},
                        evaluated=evaluator.evaluated)


def _evaluate_documents(stack: Stack, run: PlanRun | None,
                        evaluator: Evaluator) -> tuple[list[Violation], list[tuple[str, str]]]:
    """Build each secret's documents (with the plan's change and remote when given) and evaluate them."""
    config = stack.config
    targets = {name: target_document(name, cfg) for name, cfg in config.targets.items()}
    changes: dict[str, Change] = {}
    in_scope: set[tuple[str, str]] | None = None
    if run is not None:
        changes = {c.address: c for c in run.plan.changes}
        in_scope = {(d.target, d.secret) for d in run.desired}
    ids = resolved_ids(config)
    names = principal_names(config, config.targets) if run is not None else {}
    secrets: list[dict[str, Any]] = []
    inputs: list[list[TargetInput]] = []
    evaluated: list[tuple[str, str]] = []
    for decl in stack.secrets:
        name = decl.decl.name
        tins: list[TargetInput] = []
        for target in decl.decl.targets:
            if target not in targets or (in_scope is not None and (target, name) not in in_scope):
                continue
            tin = TargetInput(targets[target])
            if run is not None:
                change = changes.get(f"{target}:{name}")
                remote_key = change.remote_name if change else remote_name(decl, target, config.targets[target].provider)
                remote = run.actual.get(target, {}).get(remote_key)
                scan = run.access.get(target)
                effective = (reader_documents(scan.readers_of(remote_key), names.get(target, {}),
                                              effective_readers(stack, decl)) if scan is not None else [])
                complete = scan is not None and scan.complete_for(remote_key)
                tin = TargetInput(targets[target], change_document(change), remote_document(remote, effective, complete))
            tins.append(tin)
            evaluated.append((name, target))
        if tins:
            secrets.append(secret_document(stack, decl, ids))
            inputs.append(tins)
    return evaluator.evaluate(secrets, inputs), evaluated

"""Execute a plan: locks, phases, parallelism under per-target rate limits, retries, audit.

Every change ends ``applied``, ``failed`` (with a reason) or ``not-attempted``; nothing is
left half-written silently, and a rerun converges because the planner compares against
what the targets actually hold. Changes run phase by phase (:class:`Phase`): deletes start
only once every create, update and restore has completed. A stop request (SIGINT, SIGTERM,
a lost lock) lets the changes in flight finish and starts no new one. Each outcome is
appended to the audit log as it happens (:mod:`cloudsync.audit`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from cloudsync.audit import AuditLog, audit_path
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.interrupts import main_thread_only
from cloudsync.plan.build import PlanRun, Session
from cloudsync.plan.model import Change, Phase, Plan, Reason, ValueMode
from cloudsync.plan.retire import retire_requests, retirement_marker
from cloudsync.providers.base import ErrorKind, ProviderError, ValueRecord, now, write_request
from cloudsync.providers.lease import LeaseTerms, lease_from_env
from cloudsync.ratelimit import RateLimiter
from cloudsync.values.generate import IssuerError, generate_value, issuer_of
from cloudsync.values.secret import SecretValue
from cloudsync.values.sources import ResolveContext, resolve
from cloudsync.values.spec import generated

log = logging.getLogger("cloudsync")

MAX_ATTEMPTS = 6
BASE_DELAY = 0.2
MAX_DELAY = 20.0



class Outcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_ATTEMPTED = "not-attempted"


@dataclass
class ChangeResult:
    change: Change
    outcome: Outcome
    error: str | None = None  # one line for the audit log and JSON's ``error`` (its format is kept as it was)
    attempts: int = 0
    kind: ErrorKind | None = None  # a failure's kind, as a user fixes it (JSON's ``kind``)
    diagnostic: Diagnostic | None = None  # a failure as the CLI prints every other error

    @classmethod
    def failed(cls, change: Change, error: str, attempts: int, diagnostic: Diagnostic,
               kind: ErrorKind = ErrorKind.OTHER) -> ChangeResult:
        return cls(change, Outcome.FAILED, error, attempts, kind, diagnostic)


@dataclass
class ApplyReport:
    plan_digest: str
    results: list[ChangeResult] = field(default_factory=list)
    stopped: str | None = None  # why new changes stopped starting (a signal, a lost lock), if they did

    @property
    def ok(self) -> bool:
        return all(r.outcome is Outcome.APPLIED for r in self.results)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)


def plan_digest(plan: Plan) -> str:
    body = json.dumps([(c.address, c.action.value, [r.value for r in c.reasons]) for c in plan.real_changes],
                      separators=(",", ":"))
    return hashlib.sha256(f"{plan.stack}\n{plan.created_at.isoformat()}\n{body}".encode()).hexdigest()


def lock_holder(stack: str) -> str:
    """What a lock says about its holder (never secret): who, where, which process."""
    who = AuditLog.whoami()
    return f"{who['actor']} on {who['host']} pid {who['pid']} stack {stack}"


class ValueMaterializer:
    """Produces the plaintext each change writes, once per secret, only in memory."""

    def __init__(self, session: Session, run: PlanRun) -> None:
        self.session = session
        self.run = run
        self._lock = threading.RLock()  # a certificate asks for its CA's value while holding it
        self._generated: dict[str, SecretValue] = {}
        self._copied: dict[str, SecretValue] = {}
        self._derived: dict[str, SecretValue] = {}
        self._decls = session.stack.by_name
        self._writes: dict[str, list[Change]] = {}  # secret -> the changes of this plan that write its value
        for change in run.plan.real_changes:
            if change.writes_value:
                self._writes.setdefault(change.secret, []).append(change)

    def value_for(self, change: Change) -> SecretValue:
        plan = change.value
        assert plan is not None
        with self._lock:
            if plan.mode is ValueMode.SOURCE:
                value = self.run.values.resolved.get(change.secret)
                if value is None:
                    ctx = ResolveContext(root=self.session.stack.root, read_remote=self.session.read_value,
                                         declarations=self._decls)
                    value = resolve(self._decls[change.secret], ctx)
                    self.run.values.resolved[change.secret] = value
                return value
            if plan.mode is ValueMode.GENERATE:
                return self._generate(change.secret)
            if plan.mode is ValueMode.DERIVED:
                return self._derive(change.secret, plan.grace)
            if plan.mode is ValueMode.COPY:
                assert plan.copy_from is not None
                if change.secret not in self._copied:
                    self._copied[change.secret] = self.session.read_value(plan.copy_from, change.secret)
                return self._copied[change.secret]
        raise CloudsyncError(Diagnostic(f"{change.address}: the value was not known when this plan was made",
                                        hint="plan again once its source is readable"))

    def _generate(self, secret: str) -> SecretValue:
        """One new value per secret per apply; a certificate is signed by its CA's value after this apply."""
        if secret not in self._generated:
            spec = generated(self._decls[secret])
            ca = issuer_of(spec)
            try:
                issuer = self.value_after_apply(ca) if ca is not None else None
                self._generated[secret] = generate_value(spec, issuer=issuer)
            except CloudsyncError as exc:
                raise CloudsyncError(Diagnostic(f"cannot sign certificate {secret}: reading its CA {ca} failed: "
                                                f"{exc.diagnostics[0].message}")) from None
            except IssuerError as exc:
                raise CloudsyncError(Diagnostic(f"cannot sign certificate {secret}: {exc}")) from None
        return self._generated[secret]

    def _derive(self, secret: str, grace: timedelta | None = None) -> SecretValue:
        """A from / public_key_of value, computed from what its source holds after this apply."""
        if secret not in self._derived:
            ctx = ResolveContext(root=self.session.stack.root, declarations=self._decls,
                                 read_remote=lambda target, name: self.value_after_apply(name, target),
                                 read_previous=self.session.read_present, now=self.run.plan.created_at, grace=grace)
            self._derived[secret] = resolve(self._decls[secret], ctx)
        return self._derived[secret]

    def value_after_apply(self, secret: str, target: str | None = None) -> SecretValue:
        """The value ``secret`` holds (in ``target``, default its first) once this apply is done."""
        with self._lock:
            decl = self._decls.get(secret)
            target = target or (decl.decl.targets[0] if decl else None)
            writes = self._writes.get(secret, [])
            chosen = next((c for c in writes if c.target == target), writes[0] if writes else None)
            if chosen is not None:
                return self.value_for(chosen)
            if target is None:
                raise CloudsyncError(Diagnostic(f"secret {secret!r} is not declared in this stack"))
            return self.session.read_value(target, secret)


def _backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(MAX_DELAY, max(0.0, retry_after))
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** attempt))


def _token(digest: str, change: Change, record: ValueRecord | None) -> str:
    """The change's idempotency token.

    A value write's token derives from the keyed fingerprint of the value and from the
    record the target held before: a rerun after a kill between the value write and the
    metadata write sends the same token, and the cloud recognises the version it already
    has (AWS ClientRequestToken) instead of adding an identical one. Once the metadata moved
    on, a later write of the same value gets a new token.
    """
    if record is not None and record.fingerprint:
        was = change.before.record if change.before is not None else None
        basis = [change.address, record.key_id, record.fingerprint, *(
            [was.key_id, was.fingerprint, was.spec, was.written_at.isoformat() if was.written_at else None]
            if was is not None else [])]
        return hashlib.sha256(json.dumps(["value", *basis]).encode()).hexdigest()[:40]
    return hashlib.sha256(f"{digest}\n{change.address}".encode()).hexdigest()[:40]


def apply_plan(session: Session, run: PlanRun, *, parallelism: int = 10,
               on_result: Callable[[ChangeResult], None] | None = None,
               sleep: Callable[[float], Any] | None = None,
               stop: threading.Event | None = None, stop_reason: Callable[[], str | None] | None = None,
               ) -> ApplyReport:
    """Apply ``run.plan``'s real changes; raise CloudsyncError only before anything is written.

    Callers take the targets' locks (``session.locks``) *before* planning; a lock still
    missing is taken here, but then the plan may predate another apply's writes. ``stop``,
    once set, lets the changes in flight finish and starts no new one (``stop_reason``
    says why, for the report and the audit log).
    """
    plan = run.plan
    if plan.metadata_only:
        raise CloudsyncError(Diagnostic("a metadata-only plan cannot be applied",
                                        hint="plan again without --metadata-only (values are needed to apply)"))
    digest = plan_digest(plan)
    report = ApplyReport(plan_digest=digest)
    changes = plan.real_changes
    if not changes:
        return report
    targets = sorted({c.target for c in changes})
    try:
        terms = LeaseTerms(duration=lease_from_env())
    except ValueError as exc:
        raise CloudsyncError(Diagnostic(str(exc))) from None
    with session.locks(targets, lock_holder(plan.stack), terms):
        audit = AuditLog(audit_path(session.stack.root))
        audit.event("apply-start", {**AuditLog.whoami(), "stack": plan.stack, "plan_digest": digest,
                                    "targets": targets, "changes": len(changes)})
        engine = _Engine(session, run, digest, audit, parallelism=parallelism, on_result=on_result,
                         sleep=sleep, stop=stop or threading.Event(), stop_reason=stop_reason)
        try:
            with session.prefetched(copied_values(plan)):  # one bulk read per source target
                report.results = engine.run(targets)
            report.stopped = None if report.ok else engine.stopped()  # a stop after the last change stops nothing
        finally:
            _audit_end(audit, plan, report, complete=len(report.results) == len(changes))
            audit.close()
    return report


def copied_values(plan: Plan) -> list[tuple[str, str]]:
    """The (target, secret) values the plan's copies read: a generated value copied from a sibling target."""
    return [(c.value.copy_from, c.secret) for c in plan.real_changes
            if c.value is not None and c.value.mode is ValueMode.COPY and c.value.copy_from is not None]


class _Engine:
    """One apply's execution: phases, slots per target, the stop check before each change."""

    def __init__(self, session: Session, run: PlanRun, digest: str, audit: AuditLog, *, parallelism: int,
                 on_result: Callable[[ChangeResult], None] | None, sleep: Callable[[float], Any] | None,
                 stop: threading.Event, stop_reason: Callable[[], str | None] | None) -> None:
        self.session = session
        self.run_ = run
        self.digest = digest
        self.audit = audit
        self.parallelism = max(1, parallelism)
        self.on_result = on_result
        self.stop = stop
        self.sleep = sleep or stop.wait  # a stop request cuts a retry's wait short
        self.stop_reason = stop_reason
        self.broken: set[str] = set()  # secrets with a write that did not apply: what follows them waits

    def stopped(self) -> str | None:
        """Why no new change may start, or None."""
        for lease in self.session.leases.values():
            if lease.lost.is_set():
                return f"the lock of target {lease.target} was lost ({lease.reason})"
        if self.stop.is_set():
            return (self.stop_reason() if self.stop_reason else None) or "the apply was stopped"
        return None

    def run(self, targets: list[str]) -> list[ChangeResult]:
        session = self.session
        plan = self.run_.plan
        for target in targets:
            if any(c.writes_value for c in plan.real_changes if c.target == target):
                session.fingerprinter(target, create=True)
        self.materializer = ValueMaterializer(session, self.run_)
        # Adapters pace their own calls per operation family; an engine cap only where one asks for it.
        self.limiters = {t: RateLimiter(rate) for t in targets
                         if (rate := session.provider(t).limits.writes_per_second) is not None}
        self.slots = {t: threading.BoundedSemaphore(max(1, min(self.parallelism,
                                                               session.provider(t).limits.max_parallel)))
                      for t in targets}
        results: dict[int, ChangeResult] = {}  # by change, not address: an edited plan may name one twice
        for phase, group in plan.phases():
            # A target whose writes did not all apply keeps its deletes: a rename must not lose both names.
            unfinished = {r.change.target for r in results.values() if r.outcome is not Outcome.APPLIED}
            self.broken = {r.change.secret for r in results.values() if r.outcome is not Outcome.APPLIED}
            with ThreadPoolExecutor(max_workers=self.parallelism, initializer=main_thread_only) as pool:
                for result in pool.map(self._one, group, [phase] * len(group), [unfinished] * len(group)):
                    results[id(result.change)] = result
        return [results[id(c)] for c in plan.real_changes]

    def _one(self, change: Change, phase: Phase, unfinished: set[str]) -> ChangeResult:
        if phase is Phase.DELETE and change.target in unfinished:
            result = ChangeResult(change, Outcome.NOT_ATTEMPTED,
                                  f"not started: an earlier change on target {change.target} did not apply, "
                                  "and deletes run only after every create and update has")
        elif missed := sorted(set(change.follows) & self.broken):
            result = ChangeResult(change, Outcome.NOT_ATTEMPTED,
                                  f"not started: it follows {', '.join(missed)}, whose write did not apply")
        else:
            with self.slots[change.target]:
                reason = self.stopped()  # checked once a slot is free: a stop may have come while waiting
                if reason is not None:
                    result = ChangeResult(change, Outcome.NOT_ATTEMPTED, f"not started: {reason}")
                else:
                    result = self._apply(change)
        self.audit.event("change", {"address": change.address, "action": change.action.value,
                                    "reasons": [r.value for r in change.reasons], "outcome": result.outcome.value,
                                    "attempts": result.attempts, **({"error": result.error} if result.error else {})})
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _apply(self, change: Change) -> ChangeResult:
        session = self.session
        provider = session.provider(change.target)
        try:
            unknown = change.value is not None and change.value.mode is ValueMode.UNKNOWN
            value = self.materializer.value_for(change) if change.writes_value or unknown else None
        except CloudsyncError as exc:
            return ChangeResult.failed(change, exc.diagnostics[0].message, 0, exc.diagnostics[0])
        record = change.before.record if change.before else None
        written: ValueRecord | None = None
        if value is not None:
            fp = session.fingerprinter(change.target, create=True)
            assert fp is not None
            spec = change.value.spec if change.value else None
            stamp = now()
            written = record = ValueRecord(fingerprint=fp.of(value), key_id=fp.key_id, spec=spec, written_at=stamp,
                                           retire=retirement_marker(change, stamp))
        try:
            requests = retire_requests(change, session.stack.name, self.digest)
            if set(change.reasons) != {Reason.RETIRE}:  # a change that only retires writes nothing else
                requests.insert(0, write_request(
                    change.action, reasons=frozenset(change.reasons), stack=session.stack.name,
                    name=change.remote_name, state=change.after, value=value, record=record,
                    before=change.before, token=_token(self.digest, change, written)))
        except ProviderError as exc:
            return ChangeResult.failed(change, exc.message, 0, self._diagnostic(change, exc), exc.kind)
        self.audit.event("change-start", {"address": change.address, "action": change.action.value})
        attempt = 0
        while True:
            attempt += 1
            limiter = self.limiters.get(change.target)
            if limiter is not None:
                limiter.acquire()
            try:
                while requests:  # in order; a retry resumes at the request that failed
                    provider.apply(requests[0])
                    requests.pop(0)
                log.debug("%s: %s applied (attempt %d)", change.address, change.action.value, attempt)
                return ChangeResult(change, Outcome.APPLIED, None, attempt)
            except ProviderError as exc:
                if exc.transient and attempt < MAX_ATTEMPTS and self.stopped() is None:
                    delay = _backoff(attempt, exc.retry_after)
                    log.debug("%s: transient error %s, retrying in %.2fs", change.address, exc.code, delay)
                    self.sleep(delay)
                    if self.stopped() is None:
                        continue
                code = f" [{exc.code}]" if exc.code else ""
                hint = f" (hint: {exc.hint})" if exc.hint else ""
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                halted = " (not retried: the apply was stopped)" if exc.transient and self.stopped() else ""
                return ChangeResult.failed(change, f"{exc.message}{code}{tries}{halted}{hint}", attempt,
                                           self._diagnostic(change, exc, f"{tries}{halted}"), exc.kind)
            except Exception as exc:
                log.debug("%s: unexpected error", change.address, exc_info=True)
                what = f"unexpected error ({exc.__class__.__name__})"
                return ChangeResult.failed(change, what, attempt, Diagnostic(
                    f"{change.address}: {what}; this is a bug in cloudsync",
                    hint="rerun with --verbose for details and report it"))

    def _diagnostic(self, change: Change, exc: ProviderError, after: str = "") -> Diagnostic:
        """A failed change as plan shows a failed provider call: target, where it points, what failed, kind, hint."""
        diagnostic = self.session.failure(change.target, exc, f"{change.action.value} of {change.secret}")
        return replace(diagnostic, message=diagnostic.message + after) if after else diagnostic


def _audit_end(audit: AuditLog, plan: Plan, report: ApplyReport, *, complete: bool) -> None:
    """The summary line: every change's outcome (a change with no result never started)."""
    done = {r.change.address: r for r in report.results}
    entries = []
    for change in plan.real_changes:
        result = done.get(change.address)
        outcome = result.outcome.value if result else Outcome.NOT_ATTEMPTED.value
        entries.append({"address": change.address, "action": change.action.value,
                        "reasons": [x.value for x in change.reasons], "outcome": outcome,
                        **({"error": result.error} if result and result.error else {})})
    counts = {o.value: sum(1 for e in entries if e["outcome"] == o.value) for o in Outcome}
    status = "complete" if complete and report.ok else ("stopped" if report.stopped else "incomplete")
    audit.event("apply-end", {**AuditLog.whoami(), "stack": plan.stack, "plan_digest": report.plan_digest,
                              "result": status, **({"stopped": report.stopped} if report.stopped else {}),
                              "summary": counts, "changes": entries})


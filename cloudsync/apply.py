"""Execute a plan: locks, parallelism under per-target rate limits, retries, audit.

Every change ends ``applied``, ``failed`` (with a reason) or ``not-attempted``; nothing is
left half-written silently, and a rerun converges because the planner compares against
what the targets actually hold.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.plan.build import PlanRun, Session, provider_diagnostic
from cloudsync.plan.model import Action, Change, Plan, ValueMode
from cloudsync.providers.base import LockedError, ProviderError, ValueRecord, now, write_request
from cloudsync.ratelimit import RateLimiter
from cloudsync.values.generate import IssuerError, generate_value, issuer_of
from cloudsync.values.secret import SecretValue
from cloudsync.values.sources import ResolveContext, resolve
from cloudsync.values.spec import generated

log = logging.getLogger("cloudsync")

MAX_ATTEMPTS = 6
BASE_DELAY = 0.2
MAX_DELAY = 20.0
AUDIT_ENV = "CLOUDSYNC_AUDIT_LOG"


class Outcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_ATTEMPTED = "not-attempted"


@dataclass
class ChangeResult:
    change: Change
    outcome: Outcome
    error: str | None = None
    attempts: int = 0


@dataclass
class ApplyReport:
    plan_digest: str
    results: list[ChangeResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.outcome is Outcome.APPLIED for r in self.results)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)


def plan_digest(plan: Plan) -> str:
    body = json.dumps([(c.address, c.action.value, [r.value for r in c.reasons]) for c in plan.real_changes],
                      separators=(",", ":"))
    return hashlib.sha256(f"{plan.stack}\n{plan.created_at.isoformat()}\n{body}".encode()).hexdigest()


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
                return self._derive(change.secret)
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

    def _derive(self, secret: str) -> SecretValue:
        """A from / public_key_of value, computed from what its source holds after this apply."""
        if secret not in self._derived:
            ctx = ResolveContext(root=self.session.stack.root, declarations=self._decls,
                                 read_remote=lambda target, name: self.value_after_apply(name, target))
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


def _token(digest: str, change: Change) -> str:
    return hashlib.sha256(f"{digest}\n{change.address}".encode()).hexdigest()[:40]


@contextlib.contextmanager
def _locks(session: Session, targets: list[str], holder: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for target in sorted(targets):
            try:
                stack.enter_context(session.provider(target).lock(holder))
            except LockedError as exc:
                raise CloudsyncError(Diagnostic(f"{exc.message}", hint=exc.hint)) from None
            except ProviderError as exc:
                raise CloudsyncError(provider_diagnostic(target, exc, "taking the apply lock")) from None
        yield


def apply_plan(session: Session, run: PlanRun, *, parallelism: int = 10,
               on_result: Callable[[ChangeResult], None] | None = None,
               sleep: Callable[[float], None] = time.sleep) -> ApplyReport:
    """Apply ``run.plan``'s real changes; raise CloudsyncError only before anything is written."""
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
    holder = f"{_actor()} stack {plan.stack}"
    with _locks(session, targets, holder):
        for target in targets:
            if any(c.writes_value for c in changes if c.target == target):
                session.fingerprinter(target, create=True)
        materializer = ValueMaterializer(session, run)
        limiters = {t: RateLimiter(session.provider(t).limits.writes_per_second) for t in targets}
        slots = {t: threading.BoundedSemaphore(max(1, min(parallelism, session.provider(t).limits.max_parallel)))
                 for t in targets}
        results: dict[str, ChangeResult] = {}

        def run_one(change: Change) -> ChangeResult:
            with slots[change.target]:
                result = _apply_one(session, change, digest, materializer, limiters[change.target], sleep)
            if on_result is not None:
                on_result(result)
            return result

        # Deletes last: a rename (delete + create) never leaves a gap without the secret.
        ordered = sorted(changes, key=lambda c: c.action is Action.DELETE)
        with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
            for result in pool.map(run_one, ordered):
                results[result.change.address] = result
        report.results = [results[c.address] for c in changes]
    write_audit(session, plan, report)
    return report


def _apply_one(session: Session, change: Change, digest: str, materializer: ValueMaterializer,
               limiter: RateLimiter, sleep: Callable[[float], None]) -> ChangeResult:
    provider = session.provider(change.target)
    try:
        unknown = change.value is not None and change.value.mode is ValueMode.UNKNOWN
        value = materializer.value_for(change) if change.writes_value or unknown else None
    except CloudsyncError as exc:
        return ChangeResult(change, Outcome.FAILED, exc.diagnostics[0].message, 0)
    record = change.before.record if change.before else None
    if value is not None:
        fp = session.fingerprinter(change.target, create=True)
        assert fp is not None
        spec = change.value.spec if change.value else None
        record = ValueRecord(fingerprint=fp.of(value), key_id=fp.key_id, spec=spec, written_at=now())
    try:
        request = write_request(change.action, reasons=frozenset(change.reasons), stack=session.stack.name,
                                name=change.remote_name, state=change.after, value=value, record=record,
                                before=change.before, token=_token(digest, change))
    except ProviderError as exc:
        return ChangeResult(change, Outcome.FAILED, exc.message, 0)
    attempt = 0
    while True:
        attempt += 1
        limiter.acquire()
        try:
            provider.apply(request)
            log.debug("%s: %s applied (attempt %d)", change.address, change.action.value, attempt)
            return ChangeResult(change, Outcome.APPLIED, None, attempt)
        except ProviderError as exc:
            if exc.transient and attempt < MAX_ATTEMPTS:
                delay = _backoff(attempt, exc.retry_after)
                log.debug("%s: transient error %s, retrying in %.2fs", change.address, exc.code, delay)
                sleep(delay)
                continue
            code = f" [{exc.code}]" if exc.code else ""
            hint = f" (hint: {exc.hint})" if exc.hint else ""
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            return ChangeResult(change, Outcome.FAILED, f"{exc.message}{code}{tries}{hint}", attempt)
        except Exception as exc:
            log.debug("%s: unexpected error", change.address, exc_info=True)
            return ChangeResult(change, Outcome.FAILED, f"unexpected error ({exc.__class__.__name__})", attempt)


def _actor() -> str:
    for var in ("CLOUDSYNC_ACTOR", "GITHUB_ACTOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def audit_path(session: Session) -> Path:
    configured = os.environ.get(AUDIT_ENV)
    return Path(configured) if configured else session.stack.root / ".cloudsync" / "audit.jsonl"


def write_audit(session: Session, plan: Plan, report: ApplyReport) -> None:
    """Append one JSON line per apply: who, when, plan digest, per-change outcome (no values)."""
    record = {
        "time": now().isoformat(),
        "actor": _actor(),
        "host": socket.gethostname(),
        "stack": plan.stack,
        "plan_digest": report.plan_digest,
        "changes": [
            {"address": r.change.address, "action": r.change.action.value,
             "reasons": [x.value for x in r.change.reasons], "outcome": r.outcome.value,
             **({"error": r.error} if r.error else {})}
            for r in report.results
        ],
    }
    path = audit_path(session)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    except OSError as exc:
        log.warning("could not append the audit record to %s: %s", path, exc.strerror)

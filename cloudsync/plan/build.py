"""Gather desired and actual state for a stack and plan it.

This is the effectful edge around the pure planner: it opens providers, reads each target
in bulk (targets in parallel), resolves values once per secret (never in metadata-only
mode), fingerprints them under each target's key, and calls :func:`plan_changes`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cloudsync.config.checks import effective_readers, remote_name
from cloudsync.config.loader import Declaration, Stack
from cloudsync.config.models import Rotation, ValueSpec, as_timedelta, rotation_grace, rotation_owner
from cloudsync.config.names import translate
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Severity, suggest
from cloudsync.gc_pause import gc_paused
from cloudsync.interrupts import in_workers
from cloudsync.plan.derived import follow_sources
from cloudsync.plan.model import Plan, ValueMode
from cloudsync.plan.planner import DesiredSecret, DesiredValue, plan_changes
from cloudsync.plan.replace import replacements
from cloudsync.plan.retire import plan_retirements
from cloudsync.providers.access import AccessScan
from cloudsync.providers.base import (
    LockedError,
    NotFoundError,
    Provider,
    ProviderContext,
    ProviderError,
    ReadQuery,
    RemoteSecret,
    now,
)
from cloudsync.providers.errors import describe
from cloudsync.providers.lease import Lease, LeaseTerms, hold
from cloudsync.providers.registry import provider_class, rules_for
from cloudsync.providers.rules import ProviderRules
from cloudsync.values.dependencies import dependencies
from cloudsync.values.fingerprint import Fingerprinter, key_from_env
from cloudsync.values.generate import issuer_of, renew_after, spec_digest
from cloudsync.values.secret import SecretValue
from cloudsync.values.sources import ResolveContext, remote_reads, resolve
from cloudsync.values.spec import generate_spec, generated

log = logging.getLogger("cloudsync")


def provider_diagnostic(target: str, exc: ProviderError, doing: str, where: str | None = None) -> Diagnostic:
    """The one line a user reads for a failed provider call; ``--verbose`` adds the SDK's code and request id."""
    verbose = log.isEnabledFor(logging.DEBUG)
    # An adapter that does not know the target's name writes "<target>" in a command it suggests.
    hint = exc.hint.replace("<target>", target) if exc.hint else None
    return Diagnostic(describe(exc, target=target, where=where, doing=doing, verbose=verbose), hint=hint)


class Session:
    """The providers of one run, opened on first use and closed together."""

    def __init__(self, stack: Stack, *, full_refresh: bool = False) -> None:
        self.stack = stack
        self.full_refresh = full_refresh  # --refresh full
        self._providers: dict[str, Provider[object]] = {}
        self._lock = threading.Lock()
        self._keys: dict[str, Fingerprinter | None] = {}
        self.leases: dict[str, Lease] = {}  # the apply locks this session holds, by target
        # Values read in bulk ahead of their use, by (target, secret); only inside `prefetched`.
        self._fetched: dict[tuple[str, str], SecretValue | ProviderError] = {}

    @contextmanager
    def locks(self, targets: Iterable[str], holder: str, terms: LeaseTerms) -> Iterator[dict[str, Lease]]:
        """Hold the apply lock of every target in ``targets`` (renewed, released on exit).

        Take them before reading any actual state: a plan read before the lock may already
        be out of date when the lock is granted. Targets are locked in sorted order, so two
        applies waiting (``terms.wait``) for overlapping targets never wait for each other.
        """
        wanted = sorted(set(targets) - set(self.leases))
        # Every target that cannot connect or be locked is reported in one run; a lock taken
        # meanwhile is released again when any failed.
        failures = self.open_each(wanted)
        deadline = terms.clock() + terms.wait
        with ExitStack() as held:
            try:
                for target in wanted:
                    if target in failures:
                        continue
                    lock = self.provider(target).target_lock()
                    try:
                        lease = held.enter_context(hold(lock, holder, terms, deadline)) if lock else Lease(target)
                    except LockedError as exc:
                        failures[target] = [Diagnostic(exc.message, hint=exc.hint)]
                        continue
                    except ProviderError as exc:
                        failures[target] = [self.failure(target, exc, "taking the apply lock")]
                        continue
                    self.leases[target] = lease
                if failures:
                    raise CloudsyncError([d for target in wanted for d in failures.get(target, [])])
                yield dict(self.leases)
            finally:
                for target in wanted:
                    self.leases.pop(target, None)

    def failure(self, target: str, exc: ProviderError, doing: str) -> Diagnostic:
        """:func:`provider_diagnostic` naming where ``target`` points (endpoint, vault URL, project)."""
        config = self.stack.config.targets.get(target)
        where = rules_for(config.provider).location(config) if config is not None else None
        return provider_diagnostic(target, exc, doing, where)

    def open_each(self, targets: Iterable[str]) -> dict[str, list[Diagnostic]]:
        """Open every target's provider, one after another (SDK imports are not thread-safe
        everywhere); the diagnostics of each one that cannot be opened, by target."""
        failures: dict[str, list[Diagnostic]] = {}
        for target in targets:
            try:
                self.provider(target)
            except CloudsyncError as exc:
                failures[target] = exc.diagnostics
        return failures

    def provider(self, target: str) -> Provider[object]:
        with self._lock:
            if target not in self._providers:
                config = self.stack.config.targets[target]
                cls = provider_class(config.provider)
                context = ProviderContext(stack=self.stack.name, root=self.stack.root,
                                          full_refresh=self.full_refresh)
                try:
                    self._providers[target] = cls(target, config, context)
                except ProviderError as exc:
                    raise CloudsyncError(self.failure(target, exc, "connecting")) from None
            return self._providers[target]

    def fingerprinter(self, target: str, *, create: bool) -> Fingerprinter | None:
        """The fingerprint key of ``target``: the environment's, or the target's own."""
        cached = self._keys.get(target)
        if cached is not None or (target in self._keys and not create):
            return cached
        env_key = key_from_env()
        if env_key is not None:
            fp: Fingerprinter | None = Fingerprinter(env_key)
        else:
            try:
                key = self.provider(target).fingerprint_key(create=create)
            except ProviderError as exc:
                raise CloudsyncError(self.failure(target, exc, "reading the fingerprint key")) from None
            fp = Fingerprinter(key) if key else None
        self._keys[target] = fp
        return fp

    def read_value(self, target: str, name: str) -> SecretValue:
        """Read one value of a declared-or-not secret by logical name (for `from` and copies)."""
        value = self._read(target, name, missing_ok=False)
        assert value is not None
        return value

    def read_present(self, target: str, name: str) -> SecretValue | None:
        """Like :meth:`read_value`, but None when the secret does not exist (yet) in ``target``."""
        return self._read(target, name, missing_ok=True)

    def _read(self, target: str, name: str, *, missing_ok: bool) -> SecretValue | None:
        if target not in self.stack.config.targets:
            raise CloudsyncError(Diagnostic(f"unknown target {target!r}"))
        provider = self.provider(target)
        remote = self._remote_name(provider, name)
        fetched = self._fetched.get((target, name))
        if isinstance(fetched, SecretValue):
            return fetched
        error = fetched
        if error is None:
            try:
                return provider.read_value(remote)
            except ProviderError as exc:
                error = exc
        if missing_ok and isinstance(error, NotFoundError):
            return None
        raise CloudsyncError(self.failure(target, error, f"reading the value of {remote}")) from None

    def _remote_name(self, provider: Provider[object], name: str) -> str:
        decl = self.stack.by_name.get(name)
        return remote_name(decl, provider.target, provider.kind) if decl else translate(name, provider.kind)

    @contextmanager
    def prefetched(self, reads: Iterable[tuple[str, str]]) -> Iterator[None]:
        """Read the values of ``reads`` (target, secret) with one bulk read per target, in
        parallel across targets; :meth:`read_value` and :meth:`read_present` answer from them
        until the block ends. They stay in memory only, and only for the block.

        A target that cannot be opened or read is left out: its single reads report it, so a
        failure reads exactly as it did without the prefetch.
        """
        wanted: dict[str, dict[str, list[str]]] = {}  # target -> remote name -> secrets
        for target, name in dict.fromkeys(reads):
            if target not in self.stack.config.targets or (target, name) in self._fetched:
                continue
            try:
                provider = self.provider(target)  # opened one after another (see open_each)
            except CloudsyncError:
                continue
            wanted.setdefault(target, {}).setdefault(self._remote_name(provider, name), []).append(name)
        added: list[tuple[str, str]] = []

        def fetch(target: str) -> None:
            names = wanted[target]
            try:
                found = self.provider(target).read_values(list(names))
            except ProviderError:
                return
            for remote, secrets in names.items():
                if remote in found:
                    for name in secrets:
                        self._fetched[(target, name)] = found[remote]
                        added.append((target, name))

        try:
            in_workers(fetch, wanted, 8)
            yield
        finally:
            for key in added:
                self._fetched.pop(key, None)

    @property
    def providers(self) -> Mapping[str, Provider[object]]:
        return self._providers

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()



@contextmanager
def open_session(stack: Stack, *, full_refresh: bool = False) -> Iterator[Session]:
    session = Session(stack, full_refresh=full_refresh)
    try:
        yield session
    finally:
        session.close()


def select_targets(stack: Stack, wanted: Iterable[str] | None) -> list[str]:
    names = list(stack.config.targets)
    if not wanted:
        return names
    chosen = []
    for name in wanted:
        if name not in stack.config.targets:
            raise CloudsyncError(Diagnostic(f"unknown target {name!r}", hint=suggest(name, names)))
        chosen.append(name)
    return chosen


@dataclass
class Values:
    """Plaintext values resolved in this run, by secret name (memory only)."""

    resolved: dict[str, SecretValue] = field(default_factory=dict)


def resolve_values(session: Session, decls: Iterable[Declaration],
                   when: datetime | None = None) -> tuple[Values, list[Diagnostic]]:
    """Resolve every non-generated value once; collect every problem.

    One context serves the whole run, so each SOPS file is decrypted and each remote value
    read at most once. A value derived from another secret of this stack (``from`` one of
    its targets, ``public_key_of``) cannot be read before that secret is written: it stays
    unresolved (the plan shows its value as unknown, nothing wrong is written) with a
    warning, and the next apply writes it.
    """
    values = Values()
    diags: list[Diagnostic] = []
    declared = session.stack.by_name
    ctx = ResolveContext(root=session.stack.root, read_remote=session.read_value, declarations=declared,
                         read_previous=session.read_present, now=when)
    decls = list(decls)
    reads = [read for decl in decls for read in remote_reads(decl, declared)]
    with session.prefetched(reads):  # one bulk read per target instead of one call per value
        _resolve_each(decls, ctx, values, diags)
    return values, diags


def _resolve_each(decls: Iterable[Declaration], ctx: ResolveContext, values: Values, diags: list[Diagnostic]) -> None:
    declared = ctx.declarations
    for decl in decls:
        spec = decl.decl.value
        if spec is None or spec.kind == "generate":
            continue
        try:
            values.resolved[decl.decl.name] = resolve(decl, ctx)
        except CloudsyncError as exc:
            waits_for = [name for name, _ in dependencies(decl, declared)]
            if not waits_for:
                diags.extend(exc.diagnostics)
                continue
            # Planned as derived when this apply writes its source (see plan/derived.py).
            log.debug("the value of %s is not readable yet from %s: %s", decl.decl.name,
                      " and ".join(waits_for), exc.diagnostics[0].message)


def read_actual(session: Session, targets: list[str], desired: list[DesiredSecret],
                metadata_only: bool, scans: dict[str, AccessScan] | None = None) -> dict[str, dict[str, RemoteSecret]]:
    """Bulk-read every target (in parallel across targets); with ``scans``, each target's access scan too."""
    declared: dict[str, set[str]] = {t: set() for t in targets}
    access: dict[str, set[str]] = {t: set() for t in targets}
    granted: dict[str, set[str]] = {t: set() for t in targets}
    for want in desired:
        if want.target in declared:
            declared[want.target].add(want.remote_name)
            if want.readers is not None:
                access[want.target].add(want.remote_name)
            if want.readers:
                granted[want.target].add(want.remote_name)

    def read(target: str) -> tuple[str, dict[str, RemoteSecret]]:
        provider = session.provider(target)
        query = ReadQuery(stack=session.stack.name, declared=frozenset(declared[target]),
                          access=frozenset(access[target]), metadata_only=metadata_only,
                          granted=frozenset(granted[target]))
        try:
            secrets = provider.read(query)
        except ProviderError as exc:
            raise CloudsyncError(session.failure(target, exc, "reading secrets")) from None
        if scans is not None:
            scans[target] = scan_target(provider, query, secrets)
        log.debug("target %s: read %d secrets (%s)", target, len(secrets), dict(provider.api_calls))
        return target, {s.name: s for s in secrets}

    # Like the file diagnostics, every target's failure is reported in one run: a plan over
    # three clouds with three broken targets says so three times, not once per rerun.
    failures = session.open_each(targets)
    opened = [t for t in targets if t not in failures]
    results: dict[str, dict[str, RemoteSecret]] = {}

    def attempt(target: str) -> None:
        try:
            results.update([read(target)])
        except CloudsyncError as exc:
            failures[target] = exc.diagnostics

    in_workers(attempt, opened, 8)
    if failures:
        raise CloudsyncError([d for target in targets for d in failures.get(target, [])])
    return {target: results[target] for target in targets}


def scan_target(provider: Provider[object], query: ReadQuery, secrets: Sequence[RemoteSecret]) -> AccessScan:
    """Who can read each secret of one target; a failed scan makes every reader unknown, never none."""
    try:
        return provider.scan_access(query, secrets)
    except ProviderError as exc:
        code = f" [{exc.code}]" if exc.code else ""
        return AccessScan.skipped((s.name for s in secrets), f"access scan failed{code}: {exc.message}")


def desired_state(session: Session, targets: list[str], values: Values | None,
                  *, metadata_only: bool, actual: Mapping[str, Mapping[str, RemoteSecret]] | None = None,
                  ) -> list[DesiredSecret]:
    """The desired state of every declared secret in ``targets`` (fingerprints, never values).

    With ``actual`` (the targets as read), a certificate also learns when its CA's current
    value was written, so one signed by an older CA is renewed.
    """
    stack = session.stack
    config = stack.config
    defaults = config.defaults
    chosen = set(targets)
    declared = stack.by_name
    desired: list[DesiredSecret] = []
    kinds = {target: config.targets[target].provider for target in chosen if target in config.targets}
    ids: dict[tuple[str, str], str] = {}  # (provider, principal) -> id: a stack has few principals, many readers
    for decl in stack.secrets:
        d = decl.decl
        spec = d.value
        readers_names = effective_readers(stack, decl)
        rotation = d.rotation or defaults.rotation
        for target in d.targets:
            if target not in chosen:
                continue
            provider = kinds[target]
            rules = rules_for(provider)
            if spec is None:
                value = DesiredValue("none")
            elif spec.kind == "generate":
                value = _generated(session, decl, declared, actual)
            elif metadata_only or values is None or d.name not in values.resolved:
                value = DesiredValue("unknown")
            else:
                fp = session.fingerprinter(target, create=False)
                if fp is None:
                    value = DesiredValue("source")
                else:
                    value = DesiredValue("source", fingerprint=fp.of(values.resolved[d.name]), key_id=fp.key_id)
            readers = frozenset(ids.get((provider, name)) or ids.setdefault((provider, name),
                                                                          _principal_id(stack, name, rules))
                                for name in readers_names)
            desired.append(DesiredSecret(
                target=target, provider=provider, secret=d.name, remote_name=remote_name(decl, target, provider),
                value=value, labels={**defaults.labels, **d.labels}, description=d.description,
                readers=readers,
                protected=d.deletion_protection if d.deletion_protection is not None else defaults.deletion_protection,
                purge_on_delete=d.purge_on_delete,
                adopt=d.adopt,
                rotation=as_timedelta(rotation), rotation_by=rotation_owner(rotation),
                grace=_grace(spec, rotation),
                expires=as_timedelta(d.expires or defaults.expires),
                file=decl.file, line=decl.line,
            ))
    return desired


def _completed(session: Session, shell: list[DesiredSecret], values: Values | None,
               actual: Mapping[str, Mapping[str, RemoteSecret]]) -> list[DesiredSecret]:
    """``shell`` with what reading the values and the targets adds; the same as ``desired_state``
    with them, without computing every entry (and every generator digest) a second time.

    The shell (metadata only, no targets read) differs in two places: a value read from its
    source has its fingerprint, and a certificate learns when its CA was last written.
    """
    declared = session.stack.by_name
    out: list[DesiredSecret] = []
    for want in shell:
        value = want.value
        if value.kind == "unknown" and values is not None and want.secret in values.resolved:
            fp = session.fingerprinter(want.target, create=False)
            want = dataclasses.replace(want, value=DesiredValue("source") if fp is None else DesiredValue(
                "source", fingerprint=fp.of(values.resolved[want.secret]), key_id=fp.key_id))
        elif value.kind == "generate" and value.issuer is not None:
            want = dataclasses.replace(want, value=_generated(session, declared[want.secret], declared, actual))
        out.append(want)
    return out


def _generated(session: Session, decl: Declaration, declared: Mapping[str, Declaration],
               actual: Mapping[str, Mapping[str, RemoteSecret]] | None) -> DesiredValue:
    """A generated value's metadata: spec digest, renewal age, and its CA's last write."""
    spec = generated(decl)
    issuer = issuer_of(spec)
    issuer_written = None
    if issuer is not None and actual is not None and issuer in declared:
        # The CA's first target is where apply reads the CA from when it signs.
        ca = declared[issuer]
        ca_target = ca.decl.targets[0]
        provider = session.stack.config.targets[ca_target].provider
        remote = actual.get(ca_target, {}).get(remote_name(ca, ca_target, provider))
        issuer_written = remote.record.written_at if remote is not None and remote.record is not None else None
    return DesiredValue("generate", spec=spec_digest(spec, lambda name: generate_spec(declared.get(name))),
                        renew_after=renew_after(spec), issuer=issuer, issuer_written_at=issuer_written)


def _grace(spec: ValueSpec | None, rotation: str | Rotation | None) -> timedelta | None:
    """Generated values that cloudsync rotates retire the versions they supersede; others never do."""
    if spec is None or spec.kind != "generate" or rotation_owner(rotation) != "cloudsync":
        return None
    return rotation_grace(rotation)


def _principal_id(stack: Stack, name: str, rules: ProviderRules) -> str:
    ident = rules.principal_id(stack.config.principals[name], name)
    if ident is None:  # the loader refuses a reader without an id in the cloud of one of its targets
        raise CloudsyncError(Diagnostic(f"principal {name!r} has no {rules.kind} id"))
    return ident


@dataclass
class PlanRun:
    plan: Plan
    values: Values
    actual: dict[str, dict[str, RemoteSecret]]
    desired: list[DesiredSecret]
    access: dict[str, AccessScan] = field(default_factory=dict)  # target -> who can read what


def build_plan(session: Session, targets: list[str], *, metadata_only: bool = False,
               when: datetime | None = None, replace: Sequence[str] = (),
               grace: timedelta | None = None) -> PlanRun:
    """Plan the stack over ``targets``; raise CloudsyncError for anything that blocks planning.

    ``replace`` selects generated secrets that get a new value now (``--replace``, see
    :mod:`cloudsync.plan.replace`); ``grace`` is carried with them (``--grace``).
    """
    with gc_paused():
        return _build_plan(session, targets, metadata_only=metadata_only, when=when, replace=replace, grace=grace)


def _build_plan(session: Session, targets: list[str], *, metadata_only: bool, when: datetime | None,
                replace: Sequence[str], grace: timedelta | None) -> PlanRun:
    stack = session.stack
    replaced = replacements(stack, targets, replace)
    when = when or now()
    chosen = set(targets)
    decls = [d for d in stack.secrets if chosen & set(d.decl.targets)]
    values = Values()
    if not metadata_only:
        values, diags = resolve_values(session, decls, when)
        if diags:
            raise CloudsyncError(diags)
    shell = desired_state(session, targets, None, metadata_only=True)
    scans: dict[str, AccessScan] = {}
    actual = read_actual(session, targets, shell, metadata_only, scans)
    desired = _completed(session, shell, None if metadata_only else values, actual)
    plan = plan_changes(stack.name, desired, actual, when, metadata_only=metadata_only,
                        providers={t: stack.config.targets[t].provider for t in targets},
                        replace=replaced, grace=grace)
    if not metadata_only:
        follow_sources(plan, stack)
        plan.changes = plan_retirements(plan.changes, {d.address: d.grace for d in desired}, plan.created_at)
        plan.diagnostics += [
            Diagnostic(f"{c.address}: the value cannot be known: its source is neither readable nor written by this "
                       "apply; apply will fail this change", severity=Severity.WARNING, file=c.file, line=c.line,
                       hint="apply the secret it derives from first, or check that it is readable")
            for c in plan.real_changes if c.value is not None and c.value.mode is ValueMode.UNKNOWN]
    return PlanRun(plan=plan, values=values, actual=actual, desired=desired, access=scans)

"""Gather the access report's facts from a run: declarations, actual state and scans.

The effectful part is the read the plan already makes (one bulk read per target, plus each
target's access scan); this module only joins what that read returned with the files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from cloudsync.access.model import DEFAULT_UNUSED_AFTER, AccessReport, SecretFacts, build_report, principal_names
from cloudsync.access.versions import live_old_versions
from cloudsync.config.loader import Stack
from cloudsync.diagnostics import Diagnostic, Severity
from cloudsync.drift import Drift, DriftKind, name_scopes
from cloudsync.plan.build import PlanRun, Session, build_plan, open_session
from cloudsync.plan.planner import DesiredSecret
from cloudsync.providers.access import AccessScan, Via
from cloudsync.providers.base import ProviderError, RemoteSecret, is_reserved
from cloudsync.providers.registry import rules_for


def _facts(target: str, remote: RemoteSecret | None, want: DesiredSecret | None, scan: AccessScan | None,
           secret: str, remote_name: str, provider: str, tracks_last_access: bool,
           names_of: Mapping[str, str], now: datetime) -> SecretFacts:
    found = scan.readers_of(remote_name) if scan is not None else ()
    reasons = scan.reasons_for(remote_name) if scan is not None else ("the target was not scanned",)
    declared_ids = want.readers if want is not None and want.readers is not None else frozenset()
    declared = tuple(sorted(names_of.get(i, i) for i in declared_ids))
    return SecretFacts(
        target=target, provider=provider, remote_name=remote_name, secret=secret,
        managed=want is not None and remote is not None and not remote.deleted,
        declared_readers=declared, readers=tuple(found), complete=not reasons, incomplete_reasons=tuple(reasons),
        tracks_last_access=tracks_last_access,
        last_accessed=scan.last_accessed.get(remote_name) if scan is not None else None,
        current_version_at=remote.current_version_at if remote is not None else None,
        rotation=want.rotation if want is not None else None,
        old_versions=live_old_versions(remote.versions, now, remote.current_version) if remote is not None and remote.versions is not None
        else None,
        grace=want.grace if want is not None else None,
        expires_at=remote.expires_at if remote is not None else None,
        file=want.file if want is not None else None, line=want.line if want is not None else None)


def collect(stack: Stack, desired: list[DesiredSecret], actual: Mapping[str, Mapping[str, RemoteSecret]],
            scans: Mapping[str, AccessScan], names: Mapping[str, Mapping[str, str]],
            now: datetime | None = None) -> Iterator[SecretFacts]:
    """Facts for every declared secret that exists, and every unmanaged one in the stack's name scope."""
    now = now or datetime.now(UTC)
    declared = {(w.target, w.remote_name): w for w in desired}
    scopes = name_scopes(stack)
    for target, secrets in actual.items():
        provider = stack.config.targets[target].provider
        rules = rules_for(provider)
        prefixes = tuple(rules.remote_name(scope) for scope in scopes)
        scan = scans.get(target)
        names_by_id = names.get(target, {})
        for remote_name, remote in secrets.items():
            if remote.deleted or is_reserved(remote_name):
                continue
            want = declared.get((target, remote_name))
            if want is None and not (remote_name.startswith(prefixes) and remote.owner != stack.name):
                continue
            yield _facts(target, remote, want, scan, want.secret if want else remote_name, remote_name, provider,
                         rules.tracks_last_access, names_by_id, now)


def access_report(stack: Stack, targets: list[str], *, today: date, principal: str | None = None,
                  unused_after: timedelta = DEFAULT_UNUSED_AFTER, versions: bool = False,
                  now: datetime | None = None) -> AccessReport:
    """Read the targets (metadata only, no value) and their access scans; build the report.

    With ``versions``, also list the versions of every secret the stack owns (one call per
    secret: an explicit audit, never part of a plan), and evaluate the policies that need them.
    """
    problems: list[str] = []
    with open_session(stack) as session:
        run = build_plan(session, targets, metadata_only=True, when=now)
        if versions:
            problems = list_versions(session, run, stack.name)
    names = principal_names(stack.config, targets)
    facts = collect(stack, run.desired, run.actual, run.access, names, now)
    report = build_report(stack.name, targets, facts, names, today=today, unused_after=unused_after,
                          principal=principal)
    report.diagnostics = [d for d in run.plan.diagnostics if d.severity is Severity.WARNING]
    report.diagnostics += scan_notes(run)
    report.diagnostics += [Diagnostic(p, severity=Severity.WARNING) for p in problems]
    if versions:
        report.diagnostics += version_policy_findings(stack, run)
    return report


def list_versions(session: Session, run: PlanRun, stack: str) -> list[str]:
    """List the versions of every live secret the stack owns into ``run.actual``; return what failed."""
    problems = []
    for target, secrets in run.actual.items():
        provider = session.provider(target)
        listed: dict[str, RemoteSecret] = {}
        for name, remote in secrets.items():
            if remote.owner != stack or remote.deleted or is_reserved(name):
                continue
            try:
                found = provider.versions(name)
            except ProviderError as exc:
                problems.append(f"target {target}: listing the versions of {name} failed: {exc.message}")
                continue
            if found is not None:
                listed[name] = replace(remote, versions=tuple(found))
        run.actual[target] = {**secrets, **listed}
    return problems


def version_policy_findings(stack: Stack, run: PlanRun) -> list[Diagnostic]:
    """Violations of the policies that read ``remote.old_versions`` (plans never list versions, so
    this audit is where they speak), as warnings of the report."""
    from cloudsync.policy.engine import evaluate

    report = evaluate(stack, run)
    wanted = {p.id for p in report.policies if "old_versions" in f"{p.rule} {p.match or ''}"}
    return [Diagnostic(f"{v.policy}: {v.message}", severity=Severity.WARNING, file=v.file, line=v.line)
            for v in report.violations if v.policy in wanted]


def scan_notes(run: PlanRun) -> list[Diagnostic]:
    """What a target's scan wants a reviewer to know (e.g. an Azure vault on access policies)."""
    return [Diagnostic(f"target {target}: {note}", severity=Severity.WARNING)
            for target, scan in sorted(run.access.items()) for note in scan.notes]


def inherited_drift(stack: Stack, run: PlanRun, *, today: date) -> tuple[list[Drift], list[Diagnostic]]:
    """Drift entries for undeclared readers of the stack's secrets through broader scopes, and
    warnings for targets whose readers are not all known.

    cloudsync never removes such a grant (it belongs to whoever owns the scope), so the entry
    says where it is; a grant on the secret itself is ``access`` drift, which apply puts back.
    """
    targets = list(run.actual)
    names = principal_names(stack.config, targets)
    report = build_report(stack.name, targets, collect(stack, run.desired, run.actual, run.access, names), names,
                          today=today)
    found = []
    unknown: dict[str, int] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    for item in report.secrets:
        if not item.facts.managed:
            continue
        if not item.facts.complete:
            unknown[item.facts.target] = unknown.get(item.facts.target, 0) + 1
            reasons.setdefault(item.facts.target, item.facts.incomplete_reasons)
        for reader in item.undeclared:
            if reader.via is Via.SECRET:
                continue
            who = f"{reader.name} ({reader.principal})" if reader.name else reader.principal
            cond = " (conditional)" if reader.conditional else ""
            found.append(Drift(item.address, item.facts.target, item.facts.secret, DriftKind.INHERITED,
                               f"{who} can read through a grant at {reader.via.value} {reader.scope}: "
                               f"{reader.grant}{cond}; not declared, and cloudsync never removes it: "
                               f"ask the owner of {reader.scope} to remove it, or declare the reader",
                               principal=reader.principal, via=reader.via.value))
    diags = scan_notes(run) + [Diagnostic(f"target {target}: who can read {count} secrets is not fully known: "
                        f"{'; '.join(reasons[target]) or 'scan incomplete'}", severity=Severity.WARNING,
                        hint="grant cloudsync the access-scan permissions (cloudsync permissions --target "
                             f"{target}) or accept that broad readers there go unseen")
             for target, count in sorted(unknown.items())]
    return found, diags

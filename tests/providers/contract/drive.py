"""How the contract suite drives cloudsync: the one module that touches its engine and adapters.

Every test of the suite goes through :class:`Driver`: it writes a stack folder, plans,
applies, classifies drift and imports exactly as the CLI does (``load_stack`` ->
``open_session`` -> ``build_plan`` -> ``apply_plan`` / ``classify`` / ``import_target``),
and calls the provider interface itself only for what no command exposes (a read of the
target, ``read_value``, the fingerprint key, the lock). No test builds a write request by
hand; when the engine's or the adapters' API changes, this module is the one to adapt.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloudsync.access.collect import access_report
from cloudsync.access.model import AccessReport
from cloudsync.access.render import render_json as access_json
from cloudsync.access.render import render_markdown as access_markdown
from cloudsync.access.render import render_text as access_text
from cloudsync.adopt import import_target
from cloudsync.apply import ApplyReport, apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.drift import DriftReport, classify
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.plan.render import render_json, render_markdown, render_text
from cloudsync.providers.base import Provider, ReadQuery, RemoteSecret, Retirement, RetireRequest
from cloudsync.values.secret import SecretValue

STACK = "payments"
PRINCIPALS = ("api", "worker")

# Everything the engine produced in the current test, for the suite's leak check.
OUTPUTS: list[str] = []


@dataclass(frozen=True)
class Change:
    """A planned change as a user reads it in the plan."""

    secret: str
    action: str
    reasons: tuple[str, ...]


@dataclass
class Outcome:
    run: PlanRun
    report: ApplyReport | None = None

    @property
    def changes(self) -> list[Change]:
        return [Change(c.secret, c.action.value, tuple(r.value for r in c.reasons)) for c in self.run.plan.real_changes]

    @property
    def errors(self) -> list[str]:
        """Why changes failed (apply) and the plan's error diagnostics."""
        failed = [r.error or "" for r in self.report.results if r.outcome.value != "applied"] if self.report else []
        return failed + [d.message for d in self.run.plan.diagnostics if d.severity.value == "error"]

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok

    @property
    def unknown_readers(self) -> list[str]:
        """Why the access scans could not see every reader (a run that says so still succeeds)."""
        return [reason for scan in self.run.access.values()
                for reason in (*scan.reasons, *(r for rs in scan.secret_reasons.values() for r in rs))]

    def remote_name(self, secret: str) -> str:
        return next(w.remote_name for w in self.run.desired if w.secret == secret)


class Driver:
    """One stack folder with one target, ``target``, of the cloud under test."""

    def __init__(self, root: Path, kind: str, target: str, target_yaml: str, principals: dict[str, str]) -> None:
        self.root = root
        self.kind = kind
        self.target = target
        self.target_yaml = target_yaml
        self.principals = principals  # name -> this cloud's principal id

    # -- the stack files ------------------------------------------------------------

    def declare(self, secrets: str) -> None:
        """Write cloudsync.yaml declaring ``secrets`` (YAML list items, each ``targets: [T]``)."""
        body = textwrap.dedent(secrets).strip("\n").replace("[T]", f"[{self.target}]")
        principals = "".join(f"  {name}: {{{self.kind}: \"{ident}\"}}\n" for name, ident in self.principals.items())
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "cloudsync.yaml").write_text(
            f"version: 1\nstack: {STACK}\ntargets:\n  {self.target}: {self.target_yaml}\n"
            f"principals:\n{principals}"
            "policy: {builtin: false}  # the contract is about providers; tests/policy covers the pack\n"
            + ("secrets:\n" + textwrap.indent(body, "  ") + "\n" if body else "secrets: []\n"))

    # -- commands, as the CLI runs them ---------------------------------------------

    def plan(self, *, metadata_only: bool = False, when: datetime | None = None) -> Outcome:
        """Plan as the CLI does; ``when`` is the plan's clock (the time it compares ages against)."""
        stack = load_stack(self.root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets), metadata_only=metadata_only, when=when)
        return self._record(Outcome(run))

    def apply(self, *, when: datetime | None = None) -> Outcome:
        stack = load_stack(self.root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets), when=when)
            report = apply_plan(session, run, sleep=lambda _seconds: None)
        return self._record(Outcome(run, report))

    def applied(self, *, when: datetime | None = None) -> Outcome:
        """Apply, expect every change applied."""
        outcome = self.apply(when=when)
        assert outcome.ok, outcome.errors
        return outcome

    def converge(self, *, when: datetime | None = None) -> Outcome:
        """Apply, expect every change applied and the next plan empty."""
        outcome = self.applied(when=when)
        assert self.plan(when=when).changes == [], "a second plan after apply still has changes"
        return outcome

    def drift(self) -> DriftReport:
        stack = load_stack(self.root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets), metadata_only=True)
        self.last_drift = self._record(Outcome(run))
        return classify(stack, run.plan, run.actual, {(w.target, w.remote_name) for w in run.desired},
                        today=datetime.now(UTC).date())

    def access_versions(self, *, now: datetime | None = None) -> AccessReport:
        """``cloudsync access --versions`` as of ``now``: the old versions still enabled, and CS016."""
        stack = load_stack(self.root)
        moment = now or datetime.now(UTC)
        report = access_report(stack, list(stack.config.targets), today=moment.date(), versions=True, now=moment)
        OUTPUTS.extend([access_json(report), access_markdown(report), str(access_text(report)),
                        *(d.render() for d in report.diagnostics)])
        return report

    def import_names(self, *, adopt: bool = True) -> list[str]:
        """The logical names ``cloudsync import --target T`` would declare."""
        stack = load_stack(self.root)
        with open_session(stack) as session:
            found = import_target(stack, session, self.target, prefix=None, adopt=adopt)
        return [str(s["name"]) for s in found.secrets]

    # -- the provider interface, for what no command shows ---------------------------

    @contextlib.contextmanager
    def provider(self) -> Iterator[Provider]:
        """The target's provider in a session of its own (closed afterwards)."""
        stack = load_stack(self.root)
        with open_session(stack) as session:
            yield session.provider(self.target)

    def remote(self, remote_name: str) -> RemoteSecret | None:
        """The secret as the provider reads it, readers included (None when absent)."""
        with self.provider() as provider:
            query = ReadQuery(stack=STACK, declared=frozenset({remote_name}), access=frozenset({remote_name}))
            found = {s.name: s for s in provider.read(query)}
        return found.get(remote_name)

    def listed(self) -> set[str]:
        """Every remote name one bulk read returns (cloudsync's own secrets included)."""
        with self.provider() as provider:
            return {s.name for s in provider.read(ReadQuery(stack=STACK, declared=frozenset(), access=frozenset()))}

    def read_value(self, remote_name: str) -> SecretValue:
        with self.provider() as provider:
            return provider.read_value(remote_name)

    def retire(self, remote_name: str, version: str) -> None:
        """Ask the adapter to retire ``version`` directly, as a plan edited by hand would."""
        with self.provider() as provider:
            before = {s.name: s for s in provider.read(
                ReadQuery(stack=STACK, declared=frozenset({remote_name}), access=frozenset()))}.get(remote_name)
            provider.apply(RetireRequest(stack=STACK, name=remote_name, before=before, token="by-hand",
                                         retirement=Retirement(version, datetime.now(UTC))))

    def fingerprint_key(self, *, create: bool) -> bytes | None:
        with self.provider() as provider:
            return provider.fingerprint_key(create=create)

    @contextlib.contextmanager
    def lock(self, holder: str) -> Iterator[None]:
        """Hold the target's apply lock as ``holder`` (another apply, in another session)."""
        with self.provider() as provider, provider.lock(holder):
            yield

    def _record(self, outcome: Outcome) -> Outcome:
        plan = outcome.run.plan
        OUTPUTS.extend([str(render_text(plan)), render_json(plan), render_markdown(plan), repr(plan),
                        *(d.render() for d in plan.diagnostics), *outcome.errors])
        return outcome

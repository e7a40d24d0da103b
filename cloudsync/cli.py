"""The ``cloudsync`` command: argument parsing, rendering choice and exit codes — no logic.

Exit codes (contract): 0 success; 1 error (bad files, provider failure, blocking policy
violation); with ``plan --detailed-exitcode``, 2 = success with changes.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cloudsync import __version__
from cloudsync.cli_habits import CloudsyncGroup, set_no_color, set_verbose
from cloudsync.console import err, handles_errors, out, print_diagnostics, print_line
from cloudsync.diagnostics import CloudsyncError, Diagnostic

app = typer.Typer(
    name="cloudsync",
    help="Keep cloud secrets in the state a git repository declares, least-privilege.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=CloudsyncGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class TextJson(enum.StrEnum):
    text = "text"
    json = "json"


class ReportFormat(enum.StrEnum):
    """Formats of plan, show and drift reports."""

    text = "text"
    json = "json"
    markdown = "markdown"


class SchemaKind(enum.StrEnum):
    stack = "stack"
    secrets = "secrets"


F = TypeVar("F", bound=Callable[..., Any])
StackDir = Annotated[Path, typer.Option("-C", "--dir", help="stack folder (holds cloudsync.yaml)")]
Targets = Annotated[list[str] | None, typer.Option("--target", "-t", help="only these targets (repeatable)")]


def _version(value: bool) -> None:
    if value:
        out.print(f"cloudsync {__version__}", markup=False)
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what cloudsync does (never a value)")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="no colours or styles (also: NO_COLOR=1; "
                                                                "FORCE_COLOR=1 colours a pipe)")] = False,
    directory: Annotated[Path | None, typer.Option("-C", "--dir", metavar="DIR",
                                                   help="stack folder for the command (like terraform -chdir)")]
    = None,
) -> None:
    """Keep cloud secrets in the state a git repository declares, least-privilege."""
    level = "debug" if verbose else os.environ.get("CLOUDSYNC_LOG", "warning")
    logging.basicConfig(stream=sys.stderr, format="cloudsync: %(levelname)s: %(message)s",
                        level=logging.WARNING)
    logging.getLogger("cloudsync").setLevel(getattr(logging, level.upper(), logging.WARNING))
    set_verbose(verbose)
    set_no_color(no_color)
    if directory is not None:  # `cloudsync -C DIR plan`: the default of every command's own -C
        ctx.default_map = _dir_defaults(ctx.command, str(directory))


def _dir_defaults(command: Any, directory: str) -> dict[str, Any]:
    return {name: _dir_defaults(sub, directory) if hasattr(sub, "commands") else {"directory": directory}
            for name, sub in command.commands.items()}


def _load(directory: Path) -> Any:
    from cloudsync.config.loader import load_stack

    stack = load_stack(directory)
    print_diagnostics(stack.warnings)
    return stack


@app.command()
@handles_errors
def validate(
    directory: StackDir = Path("."),
    fmt: Annotated[TextJson, typer.Option("--format", "-f")] = TextJson.text,
    policy_dir: Annotated[list[Path] | None, typer.Option("--policy-dir",
                                                          help="extra policy folder (repeatable)")] = None,
) -> None:
    """Check the desired-state files and the policies, as plan would; report every problem with file:line:col."""
    from cloudsync.config.loader import load_stack
    from cloudsync.policy.budget import prestart
    from cloudsync.policy.engine import check_files

    prestart()  # the policy evaluator starts while the stack loads
    try:
        stack = load_stack(directory)
        # "valid" means plan would accept the files: its policies load and compile, their
        # parameters have the declared types, waivers name known policies.
        warnings = [*stack.warnings, *check_files(stack, policy_dir or [])]
    except CloudsyncError as exc:
        if fmt is TextJson.json:
            out.print(json.dumps({"valid": False, "diagnostics": [d.as_dict() for d in exc.diagnostics]}, indent=2),
                      markup=False)
            raise typer.Exit(1) from None
        raise
    if fmt is TextJson.json:
        out.print(json.dumps({"valid": True, "stack": stack.name, "secrets": len(stack.secrets),
                              "targets": list(stack.config.targets),
                              "diagnostics": [d.as_dict() for d in warnings]}, indent=2), markup=False)
        return
    print_diagnostics(warnings)
    out.print(f"{directory / 'cloudsync.yaml'}: valid: stack {stack.name}, {len(stack.secrets)} secrets, "
              f"{len(stack.config.targets)} targets", markup=False)


@app.command()
@handles_errors
def schema(kind: Annotated[SchemaKind, typer.Option("--kind", help="which file")] = SchemaKind.stack) -> None:
    """Print the JSON Schema (draft-07) of cloudsync.yaml or of secrets/*.yaml, for editors."""
    from cloudsync.config.schema import secrets_schema, stack_schema

    data = stack_schema() if kind is SchemaKind.stack else secrets_schema()
    out.print(json.dumps(data, indent=2), markup=False)


PolicyDirs = Annotated[list[Path] | None, typer.Option("--policy-dir", help="extra policy folder (repeatable)")]
Replace = Annotated[list[str] | None, typer.Option(
    "--replace", metavar="SECRET", help="plan a new value for this generated secret in every target it is in: "
    "a name, an address (target:secret) or a glob (repeatable)")]
class Refresh(enum.StrEnum):
    auto = "auto"
    full = "full"


RefreshMode = Annotated[Refresh, typer.Option(
    "--refresh", help="auto: read access through each cloud's bulk index or change feed where it has one "
    "(AWS CloudTrail, GCP Cloud Asset Inventory); full: read every owned secret's access directly, "
    "e.g. for a scheduled full check")]
Grace = Annotated[str | None, typer.Option(
    "--grace", metavar="DURATION", help="with --replace: how long the replaced value stays usable "
    "(0: retire it at once, for a confirmed leak)")]


def _replacing(replace: list[str] | None, grace: str | None) -> dict[str, Any]:
    """build_plan's --replace / --grace arguments."""
    from cloudsync.plan.replace import parse_grace

    if grace is not None and not replace:
        raise CloudsyncError(Diagnostic("--grace goes with --replace", hint="e.g. --replace payments/api-key --grace 0"))
    return {"replace": tuple(replace or ()), "grace": parse_grace(grace) if grace is not None else None}


def _render_plan(plan: Any, fmt: ReportFormat, policy: Any = None, broad: Any = ()) -> None:
    from cloudsync.access.render import broad_readers_json, broad_readers_markdown, broad_readers_text
    from cloudsync.plan.render import plan_to_dict, render_markdown, render_text

    violations = [v.as_dict() for v in policy.violations] if policy is not None else []
    waived = [v.as_dict() for v in policy.waived] if policy is not None else []
    if fmt is ReportFormat.json:
        data = plan_to_dict(plan, violations, waived)
        data["undeclared_readers"] = broad_readers_json(broad)
        out.print(json.dumps(data, indent=2), markup=False)
    elif fmt is ReportFormat.markdown:
        out.print(render_markdown(plan, violations) + broad_readers_markdown(broad), markup=False)
    else:
        out.print(render_text(plan, width=out.width if out.is_terminal else None))
        if broad:
            out.print(broad_readers_text(broad))
        if policy is not None and (policy.violations or policy.waived):
            from cloudsync.plan.render import policy_text

            out.print(policy_text(policy), end="")


def _policy(stack: Any, run: Any, dirs: list[Path] | None) -> Any:
    from cloudsync.policy import evaluate

    return evaluate(stack, run, extra_dirs=dirs or ())


def _refuse_blocking(policy: Any) -> None:
    if policy.blocking:
        diags = [Diagnostic(f"policy {v.policy} ({v.title}): {v.message}", file=v.file, line=v.line,
                            hint="fix the declaration, or add a waiver with a reason and an expiry")
                 for v in policy.errors]
        diags.append(Diagnostic(f"{len(policy.errors)} policy violations of severity error; nothing was applied"))
        raise CloudsyncError(diags)


def _report_failure(kind: str, fmt: ReportFormat, directory: Path, stack: Any, exc: CloudsyncError) -> None:
    """A failure is a report too: CI posts stdout, so JSON and markdown still say what went wrong
    (the diagnostics also reach stderr, and the exit code stays 1)."""
    from cloudsync.error_report import error_json, error_markdown

    name = stack.name if stack is not None else directory.resolve().name
    if fmt is ReportFormat.json:
        out.print(error_json(kind, name, exc.diagnostics), markup=False)
    elif fmt is ReportFormat.markdown:
        out.print(error_markdown(kind, name, exc.diagnostics), markup=False)


def _json_failure(kind: str) -> Callable[[F], F]:
    """With ``--format json``, a command that fails still prints its report on stdout (see _report_failure)."""
    import functools

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except CloudsyncError as exc:
                if kwargs.get("fmt") is TextJson.json:
                    from cloudsync.error_report import error_json

                    name = Path(kwargs.get("directory") or ".").resolve().name
                    out.print(error_json(kind, name, exc.diagnostics), markup=False)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


@app.command()
@handles_errors
def plan(
    directory: StackDir = Path("."),
    target: Targets = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                    help="exit 2 when there are changes")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="save the signed plan to FILE")] = None,
    metadata_only: Annotated[bool, typer.Option("--metadata-only",
                                                help="load no plaintext value; value changes show as unknown")] = False,
    policy_dir: PolicyDirs = None,
    replace: Replace = None,
    grace: Grace = None,
    refresh: RefreshMode = Refresh.auto,
) -> None:
    """Show what apply would change (never a value), with the policy violations."""
    from cloudsync.access.collect import inherited_drift
    from cloudsync.plan.build import build_plan, open_session, select_targets

    stack = None
    try:
        stack = _load(directory)
        targets = select_targets(stack, target)
        with open_session(stack, full_refresh=refresh is Refresh.full) as session:
            run = build_plan(session, targets, metadata_only=metadata_only, **_replacing(replace, grace))
        policy = _policy(stack, run, policy_dir)
        broad, unknown = inherited_drift(stack, run, today=run.plan.created_at.date())
    except CloudsyncError as exc:
        _report_failure("plan", fmt, directory, stack, exc)
        raise
    _render_plan(run.plan, fmt, policy, broad)
    print_diagnostics([*run.plan.diagnostics, *unknown, *policy.diagnostics])
    if run.plan.has_errors or policy.blocking:
        raise typer.Exit(1)
    if out_file is not None:
        from cloudsync.plan.planfile import PLAN_KEY_ENV, write_plan  # signing code loads only for --out

        signer = write_plan(run, out_file, stack.root)
        if run.plan.metadata_only:  # apply refuses a metadata-only plan: do not suggest applying it
            err.print(f"Saved the metadata-only plan to {out_file}, signed with {signer}; review it with: "
                      f"cloudsync show {out_file} (it cannot be applied: a plan to apply is made without "
                      "--metadata-only)", markup=False)
        else:
            err.print(f"Saved the plan to {out_file}, signed with {signer}; apply it with: cloudsync apply {out_file}",
                      markup=False)
        if signer != PLAN_KEY_ENV and not run.plan.metadata_only:
            err.print(f"hint: only a machine with this key file can apply the plan; to apply it elsewhere, set "
                      f"{PLAN_KEY_ENV} to the same secret in the plan and the apply jobs", markup=False)
    if detailed_exitcode and run.plan.real_changes:
        raise typer.Exit(2)


LockTimeout = Annotated[str, typer.Option("--lock-timeout", metavar="DURATION",
                                          help="wait this long for a target's lock held by another apply "
                                               "(e.g. 30s, 5min); default: fail at once")]


def _lease_terms(lock_timeout: str) -> Any:
    from cloudsync.providers.lease import LEASE_ENV, LeaseTerms, lease_from_env, parse_wait

    try:
        wait = parse_wait(lock_timeout)
    except ValueError as exc:
        raise CloudsyncError(Diagnostic(f"--lock-timeout: {exc}", hint=getattr(exc, "hint", None))) from None
    try:
        duration = lease_from_env()
    except ValueError as exc:
        raise CloudsyncError(Diagnostic(str(exc) if LEASE_ENV in str(exc) else f"{LEASE_ENV}: {exc}", hint=getattr(exc, "hint", None)
                                        or f"set {LEASE_ENV} to e.g. 2min")) from None
    return LeaseTerms(duration=duration, wait=wait)


@app.command()
@handles_errors
@_json_failure("apply")
def apply(
    plan_file: Annotated[Path | None, typer.Argument(help="a plan saved with plan --out")] = None,
    directory: StackDir = Path("."),
    target: Targets = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation")] = False,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=64,
                                             help="changes applied at once")] = 10,
    policy_dir: PolicyDirs = None,
    lock_timeout: LockTimeout = "0s",
    replace: Replace = None,
    grace: Grace = None,
    fmt: Annotated[TextJson, typer.Option("--format", "-f", help="json: each change's outcome on stdout "
                                                                 "(needs --auto-approve or a plan file)")]
    = TextJson.text,
) -> None:
    """Make the targets match the desired state (or apply exactly a saved plan)."""
    from cloudsync.apply import lock_holder
    from cloudsync.interrupts import stop_on_signals
    from cloudsync.plan.build import build_plan, open_session, select_targets
    from cloudsync.plan.planfile import bind, read_plan, stale_reasons

    if fmt is TextJson.json and plan_file is None and not auto_approve:
        raise CloudsyncError(Diagnostic("--format json cannot ask for confirmation",
                                        hint="pass --auto-approve, or apply a plan saved with plan --out"))
    terms = _lease_terms(lock_timeout)
    replacing = _replacing(replace, grace)
    stack = _load(directory)
    body = None
    if plan_file is not None:
        if replace:
            raise CloudsyncError(Diagnostic("--replace cannot be combined with a plan file",
                                            hint="the plan file already holds its replacements (plan --replace --out)"))
        if target:
            raise CloudsyncError(Diagnostic("--target cannot be combined with a plan file",
                                            hint="the plan file already names its targets"))
        body = read_plan(plan_file, stack.root)
        if body["stack"] != stack.name:
            raise CloudsyncError(Diagnostic(f"{plan_file} is a plan for stack {body['stack']!r}, not {stack.name!r}"))
        if body["metadata_only"]:
            raise CloudsyncError(Diagnostic(f"{plan_file} is a metadata-only plan and cannot be applied",
                                            hint="plan without --metadata-only"))
        targets = select_targets(stack, body["targets"])
    else:
        targets = select_targets(stack, target)
    with stop_on_signals() as stop, open_session(stack) as session, \
            session.locks(targets, lock_holder(stack.name), terms):
        # Locked before anything is read: no other apply writes between this plan and its apply.
        if body is not None:
            fresh = build_plan(session, targets)
            stale = stale_reasons(body, fresh, stack.root)
            if stale:
                shown = "; ".join(stale[:5]) + (f"; and {len(stale) - 5} more" if len(stale) > 5 else "")
                raise CloudsyncError(Diagnostic(f"{plan_file} is stale: {shown}", hint="make a new plan"))
            _refuse_blocking(_policy(stack, fresh, policy_dir))  # the policy files may have changed since
            run = bind(body, fresh)
        else:
            run = build_plan(session, targets, **replacing)
            policy = _policy(stack, run, policy_dir)
            if fmt is TextJson.text:
                _render_plan(run.plan, ReportFormat.text, policy)
            print_diagnostics([*run.plan.diagnostics, *policy.diagnostics])
            _refuse_blocking(policy)
        if run.plan.has_errors:
            raise CloudsyncError(Diagnostic("the plan has errors; nothing was applied"))
        changes = run.plan.real_changes
        if not changes:
            if fmt is TextJson.json:
                out.print(json.dumps(_apply_json(stack.name, None), indent=2), markup=False)
            else:
                out.print("Nothing to apply.", markup=False)
            return
        if plan_file is None and not auto_approve:
            _confirm(stack.name, len(changes))
        _run_apply(session, run, parallelism, stop, fmt)


def _confirm(stack_name: str, count: int) -> None:
    if not sys.stdin.isatty():
        raise CloudsyncError(Diagnostic("refusing to apply: no terminal to ask for confirmation",
                                        hint="review the plan and pass --auto-approve, or apply a saved plan file"))
    answer = typer.prompt(f"Apply {count} changes to stack {stack_name}? Only 'yes' is accepted", default="",
                          show_default=False)
    if answer.strip() != "yes":
        err.print("Apply cancelled; nothing was changed.", markup=False)
        raise typer.Exit(1)


def _run_apply(session: Any, run: Any, parallelism: int, stop: Any, fmt: TextJson = TextJson.text) -> None:
    from rich.progress import Progress

    from cloudsync.apply import ChangeResult, Outcome, apply_plan
    from cloudsync.audit import audit_path

    changes = run.plan.real_changes
    progress = Progress(console=err, transient=True) if err.is_terminal else None
    marks = {Outcome.APPLIED: ("ok", "green"), Outcome.FAILED: ("FAILED", "red"),
             Outcome.NOT_ATTEMPTED: ("skipped", "yellow")}

    def report(result: ChangeResult) -> None:
        change = result.change
        mark, style = marks[result.outcome]
        why = f": {result.error}" if result.error and result.diagnostic is None else ""
        print_line(err, f"  {mark:<8}{change.action.value:<8}{change.address}{why}", style)
        if result.diagnostic is not None:  # a failure: `error: …` with its hint, as every other error prints
            print_line(err, result.diagnostic.render(), style)
        if progress is not None:
            progress.advance(task)

    if progress is not None:
        progress.start()
        task = progress.add_task("applying", total=len(changes))
    try:
        with stop.writing():
            result = apply_plan(session, run, parallelism=parallelism, on_result=report, stop=stop.event,
                                stop_reason=lambda: f"{stop.signal} received" if stop.signal else None)
    finally:
        if progress is not None:
            progress.stop()
    applied, failed = result.count(Outcome.APPLIED), result.count(Outcome.FAILED)
    missed = result.count(Outcome.NOT_ATTEMPTED)
    state = f"stopped ({result.stopped})" if result.stopped else ("complete" if result.ok else "incomplete")
    line = f"Apply {state}: {applied} applied, {failed} failed, {missed} not attempted."
    if fmt is TextJson.json:
        out.print(json.dumps(_apply_json(session.stack.name, result), indent=2), markup=False)
    else:
        out.print(line, style="bold" if result.ok else "bold red", markup=False)
    err.print(f"Audit record appended to {audit_path(session.stack.root)}", style="dim", markup=False)
    if not result.ok:
        err.print("hint: fix the cause and run apply again; it continues from what the targets now hold",
                  markup=False)
        raise typer.Exit(1)


def _apply_json(stack_name: str, result: Any) -> dict[str, Any]:
    """``apply --format json`` (documented in docs/gitops.md): one outcome per change, never a value."""
    results = result.results if result is not None else []
    counts = {o: sum(r.outcome.value == o for r in results) for o in ("applied", "failed", "not-attempted")}
    status = ("nothing-to-apply" if result is None else "stopped" if result.stopped
              else "complete" if result.ok else "incomplete")
    return {
        "format_version": 1, "kind": "apply", "stack": stack_name, "ok": result is None or result.ok,
        "status": status, "stopped": result.stopped if result is not None else None,
        "changes": [{"address": r.change.address, "target": r.change.target, "secret": r.change.secret,
                     "action": r.change.action.value, "reasons": [str(x) for x in r.change.reasons],
                     "outcome": r.outcome.value, "error": r.error, "attempts": r.attempts,
                     "kind": r.kind.value if r.kind is not None else None} for r in results],
        "summary": {"applied": counts["applied"], "failed": counts["failed"],
                    "not_attempted": counts["not-attempted"]},
    }


@app.command("force-unlock")
@handles_errors
def force_unlock(
    target: Annotated[str, typer.Option("--target", "-t", help="the target whose apply lock to remove")],
    directory: StackDir = Path("."),
    yes: Annotated[bool, typer.Option("--yes", help="remove it without asking")] = False,
) -> None:
    """Remove a target's apply lock left by an apply that no longer runs (names what it removes)."""
    from cloudsync.plan.build import open_session, select_targets
    from cloudsync.providers.base import ProviderError
    from cloudsync.providers.lease import LeaseTerms

    stack = _load(directory)
    select_targets(stack, [target])
    terms = LeaseTerms()
    with open_session(stack) as session:
        lock = session.provider(target).target_lock()
        if lock is None:
            out.print(f"target {target} keeps no apply lock; nothing to remove", markup=False)
            return
        try:
            holders = lock.holders(terms)
            if not holders:
                out.print(f"target {target} is not locked; nothing to remove", markup=False)
                return
            moment = terms.clock()
            for holder in holders:
                out.print(f"target {target}: the {lock.where} is held by {holder.describe(moment)}", markup=False)
            if not yes:
                _confirm_unlock(target)
            removed = lock.remove(holders, terms)
        except ProviderError as exc:
            raise CloudsyncError(session.failure(target, exc, "removing the apply lock")) from None
    for holder in removed:
        out.print(f"Removed the apply lock of target {target} held by {holder.describe(moment)}.", markup=False)
    if len(removed) < len(holders):
        raise CloudsyncError(Diagnostic(f"the lock of target {target} changed while it was being removed "
                                        "(released, or taken by another apply); nothing else was removed",
                                        hint=f"run `cloudsync force-unlock --target {target}` again to see it"))


def _confirm_unlock(target: str) -> None:
    if not sys.stdin.isatty():
        raise CloudsyncError(Diagnostic("refusing to remove the lock: no terminal to ask for confirmation",
                                        hint="make sure no apply is running, then pass --yes"))
    answer = typer.prompt(f"Remove the apply lock of target {target}? An apply still running under it would "
                          "no longer be protected. Only 'yes' is accepted", default="", show_default=False)
    if answer.strip() != "yes":
        err.print("Nothing was removed.", markup=False)
        raise typer.Exit(1)


@app.command()
@handles_errors
def show(
    plan_file: Annotated[Path, typer.Argument(help="a plan saved with plan --out")],
    directory: StackDir = Path("."),
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
) -> None:
    """Render a saved plan file (after checking its signature)."""
    from cloudsync.plan.planfile import PLAN_KEY_ENV, plan_from_body, read_plan

    if not (directory / "cloudsync.yaml").is_file() and not os.environ.get(PLAN_KEY_ENV):
        # The key file is looked up in the stack folder: outside it, the missing -C is the problem.
        raise CloudsyncError(Diagnostic(
            f"no cloudsync.yaml in {directory}: show checks the plan's signature with the stack's key file",
            hint=f"pass -C with the stack folder the plan was made in, or set {PLAN_KEY_ENV}"))
    body = read_plan(plan_file, directory)
    _render_plan(plan_from_body(body), fmt)


@app.command()
@handles_errors
def drift(
    directory: StackDir = Path("."),
    target: Targets = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.text,
    refresh: RefreshMode = Refresh.auto,
) -> None:
    """Report drift, read-only and without values: exit 0 none, 2 drift, 1 error."""
    from datetime import UTC, datetime

    from cloudsync.access.collect import inherited_drift
    from cloudsync.drift import classify
    from cloudsync.drift_render import render_drift_markdown, render_drift_text
    from cloudsync.plan.build import build_plan, open_session, select_targets

    stack = None
    try:
        stack = _load(directory)
        with open_session(stack, full_refresh=refresh is Refresh.full) as session:
            run = build_plan(session, select_targets(stack, target), metadata_only=True)
        declared = {(w.target, w.remote_name) for w in run.desired}
        inherited, unknown = inherited_drift(stack, run, today=datetime.now(UTC).date())
        report = classify(stack, run.plan, run.actual, declared, today=datetime.now(UTC).date(), inherited=inherited)
        report.diagnostics += unknown
    except CloudsyncError as exc:
        _report_failure("drift", fmt, directory, stack, exc)
        raise
    if fmt is ReportFormat.json:
        out.print(json.dumps(report.as_dict(), indent=2), markup=False)
    elif fmt is ReportFormat.markdown:
        out.print(render_drift_markdown(report), markup=False)
    else:
        out.print(render_drift_text(report))
    print_diagnostics(report.diagnostics)
    raise typer.Exit(2 if report.drifted else 0)


class AccessFormat(enum.StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


@app.command()
@handles_errors
def access(
    directory: StackDir = Path("."),
    target: Targets = None,
    principal: Annotated[str | None, typer.Option(
        "--principal", "-p", help="only what this principal (declared name or cloud id) can read")] = None,
    fmt: Annotated[AccessFormat, typer.Option("--format", "-f")] = AccessFormat.text,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="write the report to FILE (html needs it)")]
    = None,
    unused_after: Annotated[str, typer.Option(
        "--unused-after", help="a declared reader of a secret not read for this long is an unused grant")] = "90d",
    versions: Annotated[bool, typer.Option(
        "--versions", help="also list each owned secret's old versions still enabled (one call per secret)")] = False,
) -> None:
    """Who can read what: declared and effective readers of every secret, read-only, no value."""
    from datetime import UTC, datetime

    from cloudsync.access.collect import access_report
    from cloudsync.access.html import render_html
    from cloudsync.access.render import render_json, render_markdown, render_text
    from cloudsync.config.durations import parse_duration
    from cloudsync.plan.build import select_targets

    if fmt is AccessFormat.html and out_file is None:
        raise CloudsyncError(Diagnostic("--format html needs --out FILE", hint="e.g. --out access.html"))
    try:
        threshold = parse_duration(unused_after)
    except ValueError as exc:
        raise CloudsyncError(Diagnostic(f"--unused-after: {exc}", hint=getattr(exc, "hint", "e.g. 90d"))) from None
    stack = _load(directory)
    report = access_report(stack, select_targets(stack, target), today=datetime.now(UTC).date(),
                           principal=principal, unused_after=threshold, versions=versions)
    if fmt is AccessFormat.text and out_file is None:
        out.print(render_text(report))
    else:
        text = (render_json(report) if fmt is AccessFormat.json else render_markdown(report)
                if fmt is AccessFormat.markdown else render_html(report) if fmt is AccessFormat.html
                else render_text(report).plain)
        if out_file is None:
            out.print(text, markup=False)
        else:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(text, encoding="utf-8")
            err.print(f"Wrote the access report to {out_file}", markup=False)
    print_diagnostics(report.diagnostics)


@app.command("import")
@handles_errors
@_json_failure("import")
def import_(
    target: Annotated[str, typer.Option("--target", "-t", help="the target to look in")],
    directory: StackDir = Path("."),
    prefix: Annotated[str | None, typer.Option("--prefix", help="only remote names starting with this")] = None,
    adopt: Annotated[bool, typer.Option("--adopt", help="mark the declarations for adoption by the next apply")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="write to FILE instead of stdout")] = None,
    fmt: Annotated[TextJson, typer.Option("--format", "-f", help="text: YAML declarations; json: the same as data")]
    = TextJson.text,
) -> None:
    """Write declarations (no values) for the secrets in a target that the stack does not own."""
    from datetime import UTC, datetime

    from cloudsync.adopt import header, import_target
    from cloudsync.plan.build import open_session, select_targets

    stack = _load(directory)
    select_targets(stack, [target])  # an unknown target gets "did you mean"
    with open_session(stack) as session:
        found = import_target(stack, session, target, prefix=prefix, adopt=adopt)
    text = found.to_yaml(header(stack, target, len(found.secrets), adopt, datetime.now(UTC).date().isoformat()))
    if fmt is TextJson.json:  # documented in docs/gitops.md
        text = json.dumps({"format_version": 1, "kind": "import", "stack": stack.name, "target": target,
                           "adopt": adopt, "secrets": found.secrets, "principals": found.principals,
                           "notes": found.notes}, indent=2) + "\n"
    if out_file is None:
        out.print(text, markup=False, end="")
    else:
        if out_file.exists():
            raise CloudsyncError(Diagnostic(f"{out_file} exists; refusing to overwrite it",
                                            hint="choose another --out file or remove it"))
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(text, encoding="utf-8")
        err.print(f"Wrote {len(found.secrets)} declarations to {out_file}", markup=False)
    if found.principals:
        err.print(f"{len(found.principals)} readers match no declared principal: add the principals listed "
                  "at the top of the output to cloudsync.yaml", markup=False)


@app.command()
@handles_errors
def targets(
    directory: StackDir = Path("."),
    fmt: Annotated[TextJson, typer.Option("--format", "-f")] = TextJson.text,
    provider: Annotated[str | None, typer.Option("--provider", help="only targets of this provider")] = None,
) -> None:
    """List the stack's targets (JSON feeds a CI matrix: one shard per target)."""
    from cloudsync.diagnostics import suggest
    from cloudsync.providers.registry import kinds

    if provider is not None and provider not in kinds():
        # an empty matrix and exit 0 would make a CI job silently run nothing
        raise CloudsyncError(Diagnostic(f"unknown provider {provider!r}", hint=suggest(provider, kinds(), "one of")))
    stack = _load(directory)
    rows = [{"target": name, "provider": cfg.provider,
             "secrets": sum(1 for d in stack.secrets if name in d.decl.targets)}
            for name, cfg in stack.config.targets.items() if provider in (None, cfg.provider)]
    if fmt is TextJson.json:
        out.print(json.dumps({"stack": stack.name, "include": rows}), markup=False)
        return
    for row in rows:
        out.print(f"{row['target']:<24}{row['provider']:<8}{row['secrets']} secrets", markup=False)


@app.command()
@handles_errors
@_json_failure("permissions")
def permissions(
    target: Annotated[str, typer.Option("--target", "-t", help="the target to describe")],
    directory: StackDir = Path("."),
    fmt: Annotated[TextJson, typer.Option("--format", "-f", help="text: what to paste into the cloud; "
                                                                 "json: the actions per operation")]
    = TextJson.text,
) -> None:
    """Print the permissions cloudsync's own identity needs on a target, per operation."""
    from cloudsync.plan.build import select_targets
    from cloudsync.providers.registry import provider_class

    stack = _load(directory)
    select_targets(stack, [target])
    config = stack.config.targets[target]
    cls = provider_class(config.provider)
    text = cls.render_permissions(config, stack.name, target)
    if fmt is TextJson.json:  # documented in docs/gitops.md
        text = json.dumps({"format_version": 1, "kind": "permissions", "stack": stack.name, "target": target,
                           "provider": config.provider,
                           "operations": {op.value: list(actions) for op, actions in cls.permissions().items()},
                           "rendered": text}, indent=2)
    out.print(text, markup=False)


def _mount_policy() -> None:
    from cloudsync.policy.commands import policy_app

    app.add_typer(policy_app, name="policy", help="Check, test and describe the policies (no cloud contact).")


_mount_policy()


def run() -> None:
    app()

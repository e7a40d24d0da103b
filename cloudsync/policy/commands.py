"""``cloudsync policy``: check a stack without any cloud, run policy tests, print the input schema.

The lead mounts this with ``app.add_typer(policy_app, name="policy")``. Like cli.py it
holds no logic: parse, call the engine, render, choose the exit code. A CloudsyncError
becomes diagnostics on stderr and exit 1; a traceback never reaches the user.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudsync.console import handles_errors, print_diagnostics
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.safe_text import safe_text

policy_app = typer.Typer(
    name="policy",
    help="Policy as code: check a stack against its policies, test policies, print the input schema.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class CheckFormat(enum.StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    junit = "junit"


class TestFormat(enum.StrEnum):
    text = "text"
    junit = "junit"


StackDir = Annotated[Path, typer.Option("-C", "--dir", help="stack folder (holds cloudsync.yaml)")]
PolicyDirs = Annotated[list[Path] | None, typer.Option("--policy-dir", help="extra policy folder (repeatable)")]


def _emit(text: str) -> None:
    # Plain echo, not rich: JSON, SARIF and XML must reach stdout byte for byte (rich would
    # turn ":name:" into emoji and could wrap lines). Renderers escape what they show; this
    # is the last line of defence, as the consoles' render hook is for rich output.
    typer.echo(safe_text(text, None, lines=True))


@policy_app.command()
@handles_errors
def check(
    directory: StackDir = Path("."),
    policy_dir: PolicyDirs = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="text, json, sarif or junit")] = CheckFormat.text,
) -> None:
    """Evaluate the policies over the desired state only (no cloud contact); exit 1 on errors."""
    from cloudsync.config.loader import load_stack
    from cloudsync.policy.budget import prestart
    from cloudsync.policy.engine import evaluate
    from cloudsync.policy.junit import render_report_junit
    from cloudsync.policy.render import render_json, render_text
    from cloudsync.policy.sarif import render_sarif

    prestart()  # the policy evaluator starts while the stack loads
    try:
        stack = load_stack(directory)
        print_diagnostics(stack.warnings)
        report = evaluate(stack, extra_dirs=policy_dir or [])
    except CloudsyncError as exc:
        if fmt is CheckFormat.json:  # a failure is a report too: CI keeps what was printed
            from cloudsync.error_report import error_json

            _emit(error_json("policy check", directory.resolve().name, exc.diagnostics))
        raise
    print_diagnostics(report.diagnostics)
    renderers: dict[CheckFormat, Callable[[Any], str]] = {
        CheckFormat.text: render_text, CheckFormat.json: render_json,
        CheckFormat.sarif: render_sarif, CheckFormat.junit: render_report_junit,
    }
    _emit(renderers[fmt](report))
    if report.blocking:
        raise typer.Exit(1)


@policy_app.command("test")
@handles_errors
def test_(
    path: Annotated[Path | None, typer.Argument(help="a test file or folder (default: the built-in pack's "
                                                     "tests and the stack's policies/tests)")] = None,
    directory: StackDir = Path("."),
    policy_dir: PolicyDirs = None,
    fmt: Annotated[TestFormat, typer.Option("--format", "-f", help="text or junit")] = TestFormat.text,
    run: Annotated[str | None, typer.Option("--run", "-r", help="only cases whose name matches this regex")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passing cases too")] = False,
) -> None:
    """Run policy test cases (input + exact expected violations); exit 1 on any failure."""
    import re

    from cloudsync.config.loader import load_stack
    from cloudsync.policy.junit import render_tests_junit
    from cloudsync.policy.loader import builtin_dir
    from cloudsync.policy.render import render_test_text
    from cloudsync.policy.testing import run_policy_tests

    stack_dirs: list[Path] = []
    default_paths = [builtin_dir() / "tests"]
    if (directory / "cloudsync.yaml").is_file():
        # The stack's own policies are under test too; its tests join the built-in pack's.
        stack = load_stack(directory)
        if (directory / "policies").is_dir():
            stack_dirs.append(directory / "policies")
        stack_dirs += [directory / d for d in stack.config.policy.dirs]
        if (directory / "policies" / "tests").is_dir():
            default_paths.append(directory / "policies" / "tests")
    dirs = stack_dirs + list(policy_dir or [])
    if run is not None:
        try:
            re.compile(run)
        except re.error as exc:
            raise CloudsyncError(Diagnostic(f"--run is not a valid regular expression: {exc}")) from None
    result = run_policy_tests([path] if path is not None else default_paths, policy_dirs_=dirs, name_filter=run,
                              root=directory)
    if not result.results:
        raise CloudsyncError(Diagnostic("no policy test cases ran", hint="check the path and --run"))
    _emit(render_tests_junit(result) if fmt is TestFormat.junit else render_test_text(result, verbose=verbose))
    if result.failed:
        raise typer.Exit(1)


@policy_app.command()
@handles_errors
def schema() -> None:
    """Print the JSON Schema of the versioned policy input document."""
    from cloudsync.policy.document import input_schema

    _emit(json.dumps(input_schema(), indent=2))

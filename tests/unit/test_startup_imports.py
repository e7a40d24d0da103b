"""What a command imports is what it uses: no cloud SDK, no CEL in the CLI process, and an
evaluator process with only the CEL extension. (Start-up time is measured in
benchmarks/core_plan.py; these are the behaviours that keep it short.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEVER_IN_A_LOCAL_PLAN = ("cel", "boto3", "botocore", "google", "grpc", "azure", "prompt_toolkit", "pygments")


def _modules_after(code: str, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)), file=sys.__stdout__)\n"
    full_env = {**{k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}, **(env or {})}
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def _tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def _imported_by(code: str, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    """What ``code`` imports beyond an empty interpreter of the same environment (under
    coverage, every Python process starts with coverage and the sqlite3 it stores data in)."""
    return _modules_after(code, cwd, env) - _modules_after("pass", cwd, env)


def test_a_local_plan_imports_no_cloud_sdk_and_no_cel_in_the_cli_process(tmp_path: Path) -> None:
    stack = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", stack, ignore=shutil.ignore_patterns(".cloudsync"))
    modules = _imported_by("""
        from cloudsync.cli import app
        try:
            app(["plan", "-C", "."])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """, stack, {"QUICKSTART_SMTP_PASSWORD": "not-a-real-password"})
    assert "cloudsync.plan.build" in modules, "the plan ran"
    assert not _tops(modules) & set(NEVER_IN_A_LOCAL_PLAN)
    assert "cloudsync.plan.planfile" not in modules, "signing code loads only for plan --out"


def test_importing_the_cli_loads_no_engine_and_no_sdk(tmp_path: Path) -> None:
    modules = _imported_by("import cloudsync.cli", tmp_path)
    assert not _tops(modules) & {*NEVER_IN_A_LOCAL_PLAN, "yaml", "sqlite3", "cryptography"}
    assert not {m for m in modules if m.startswith(("cloudsync.plan", "cloudsync.policy.engine", "cloudsync.values"))}


def test_the_policy_evaluator_loads_the_cel_extension_without_the_cel_package_cli(tmp_path: Path) -> None:
    modules = _modules_after("""
        import cloudsync.policy.celworker as worker
        assert worker.compile_source("[1, 2].exists(x, x > 1)").execute(worker._cel.Context()) is True
        """, tmp_path)
    assert "cel.cel" in modules
    assert not {m for m in modules if m in ("cel.cli", "cel.stdlib") or m.split(".")[0] in
                ("typer", "rich", "prompt_toolkit", "pygments", "pydantic", "yaml")}


def test_the_evaluator_can_start_before_the_stack_models_import(tmp_path: Path) -> None:
    # plan calls prestart() first thing, so the evaluator's interpreter starts while the
    # models, YAML and pydantic import; importing what prestart needs must not import those.
    modules = _imported_by("from cloudsync.policy.budget import prestart", tmp_path)
    assert not _tops(modules) & {"pydantic", "yaml", "typer", "rich", "cel"}
    assert not {m for m in modules if m.startswith(("cloudsync.config", "cloudsync.policy.references"))}

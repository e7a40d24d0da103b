"""Adapters load lazily, and a missing SDK names the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers import registry

HEAVY = ("boto3", "botocore", "google.cloud.secretmanager", "grpc", "azure.keyvault.secrets", "azure.identity", "cel")


def test_a_missing_sdk_is_a_diagnostic_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "adapter_without_sdk.py").write_text("import sdk_that_is_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.ADAPTERS, "aws", ("adapter_without_sdk", "AwsProvider", "aws"))
    with pytest.raises(CloudsyncError) as info:
        registry.provider_class("aws")
    (diag,) = info.value.diagnostics
    assert "needs sdk_that_is_not_installed_xyz" in diag.message and diag.hint == "pip install 'cloudsync[aws]'"


def test_help_and_local_runs_import_no_cloud_sdk(tmp_path: Path) -> None:
    (tmp_path / "cloudsync.yaml").write_text(
        "version: 1\nstack: s\ntargets:\n  local: {provider: local}\ndefaults:\n  labels: {owner: o}\n"
        "  rotation: 30d\nsecrets:\n  - {name: a/b, targets: [local], value: {generate: {length: 32}}}\n")
    script = (
        "import sys\n"
        "from cloudsync.cli import app\n"
        f"for args in (['--help'], ['validate', '-C', {str(tmp_path)!r}], ['plan', '-C', {str(tmp_path)!r}]):\n"
        "    try:\n"
        "        app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "    print(args[0], loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("--help", "validate", "plan"))]
    # CEL runs in the policy evaluator's own process, never here; no run on the local provider loads a cloud SDK.
    assert lines == ["--help []", "validate []", "plan []"], result.stdout + result.stderr

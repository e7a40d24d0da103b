"""What a user reads when one change of an apply fails, through the installed ``cloudsync``.

A failed change prints like every other error of the CLI — ``error: target … (where it
points): <what> failed (<kind>): <the cloud's reason> (hint: …)`` — under its ``FAILED``
line; the SDK's error code only with ``-v``, as for plan. ``apply --format json`` adds the
failure's ``kind`` to each change (null for the others) and keeps ``error`` as it was.
The cloud is the GCP fake over gRPC, refusing ``SetIamPolicy`` as a real project would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, assert_no_canary
from tests.fakes.gcp import FakeSecretManager
from tests.providers.conftest import gcp_server  # noqa: F401  (the fake, one per test session)

Cli = Callable[..., CliResult]
PROJECT = "acme-prod"


@pytest.fixture
def stack(gcp_server: FakeSecretManager, write_stack: Callable[..., Path]) -> Path:  # noqa: F811
    gcp_server.reset()
    gcp_server.deny("SetIamPolicy")
    return write_stack(f"""\
        version: 1
        stack: payments
        targets:
          gcp-prod: {{provider: gcp, project: {PROJECT}, endpoint: "{gcp_server.address}"}}
        principals:
          api: {{gcp: "serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"}}
        policy: {{builtin: false}}
        secrets:
          - name: payments/db-password
            targets: [gcp-prod]
            value: {{env: DB_PASSWORD}}
            readers: [api]
          - name: payments/session-key
            targets: [gcp-prod]
            value: {{env: DB_PASSWORD}}
        """)


def apply(cli: Cli, stack: Path, canary: str, *args: str, verbose: bool = False) -> CliResult:
    flags = ("-v",) if verbose else ()
    result = cli(*flags, "apply", "--auto-approve", *args, "-C", str(stack), env={"DB_PASSWORD": canary})
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert_no_canary(canary, result.output)
    return result


def test_a_failed_change_prints_an_error_line_with_kind_and_hint_like_plan(
        cli: Cli, stack: Path, canary: str, gcp_server: FakeSecretManager) -> None:  # noqa: F811
    result = apply(cli, stack, canary)
    lines = result.stderr.splitlines()
    failed = lines.index("  FAILED  create  gcp-prod:payments/db-password")  # the address alone on its line
    error = lines[failed + 1]
    assert error.startswith(f"error: target gcp-prod (project {PROJECT} at {gcp_server.address}): "
                            "create of payments/db-password failed (permission denied): "), error
    assert ("SetIamPolicy on projects/acme-prod/secrets/payments__db-password needs "
            "secretmanager.secrets.setIamPolicy") in error
    assert "(hint: " in error and "cloudsync permissions --target gcp-prod" in error, error
    assert "[PERMISSION_DENIED]" not in result.stderr and "[code " not in result.stderr  # codes are for -v
    assert "  ok      create  gcp-prod:payments/session-key" in lines
    assert [line for line in lines if line.startswith("error: ")] == [error]  # one per failed change
    assert "Apply incomplete: 1 applied, 1 failed, 0 not attempted." in result.stdout

    verbose = apply(cli, stack, canary, verbose=True)
    (line,) = [line for line in verbose.stderr.splitlines() if line.startswith("error: target gcp-prod")]
    assert "update of payments/db-password failed (permission denied)" in line  # the rerun only grants
    assert "[code PERMISSION_DENIED]" in line, line


def test_apply_json_gives_each_failed_change_its_kind_and_keeps_error(
        cli: Cli, stack: Path, canary: str) -> None:
    result = apply(cli, stack, canary, "--format", "json")
    report = json.loads(result.stdout)
    changes = {c["secret"]: c for c in report["changes"]}
    failed, applied = changes["payments/db-password"], changes["payments/session-key"]
    assert failed["outcome"] == "failed" and failed["kind"] == "permission denied"
    assert "SetIamPolicy" in failed["error"] and failed["attempts"] == 1  # `error` is kept as it was
    assert applied["outcome"] == "applied" and applied["kind"] is None and applied["error"] is None
    assert report["summary"] == {"applied": 1, "failed": 1, "not_attempted": 0}
    # stderr shows the same failure as the text format does
    assert any(line.startswith("error: target gcp-prod") for line in result.stderr.splitlines())

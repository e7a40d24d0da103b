"""The installed ``cloudsync`` command against the fake, as an operator runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.cloud import secretmanager

from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp.conftest import PROJECT
from tests.providers.gcp.test_lifecycle import DB, SECRETS

Client = secretmanager.SecretManagerServiceClient
Cli = Callable[..., CliResult]


@pytest.fixture
def stack(gcp_stack: Callable[..., Path]) -> Path:
    return gcp_stack(SECRETS)


def run(cli: Cli, stack: Path, canary: str, *args: str) -> CliResult:
    result = cli(*args, "-C", str(stack), env={"DB_PASSWORD": canary, "CLOUDSYNC_PLAN_KEY": "g" * 32})
    assert_no_canary(canary, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_plan_apply_plan_converges_and_no_value_leaks(
        cli: Cli, stack: Path, canary: str, gcp: FakeSecretManager, sm: Client, tmp_path: Path) -> None:
    first = run(cli, stack, canary, "plan", "--detailed-exitcode")
    assert first.code == 2, first.output
    assert "+ create  gcp-prod:payments/db-password" in first.stdout

    # Throttling and an outage during apply are absorbed by the retries.
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 2, methods=["AddSecretVersion"], retry_delay=0.01)
    gcp.inject(grpc.StatusCode.UNAVAILABLE, 1, methods=["SetIamPolicy"], retry_delay=0.01)
    applied = run(cli, stack, canary, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "Apply complete: 2 applied, 0 failed, 0 not attempted." in applied.stdout
    assert gcp.pending_faults() == 0

    again = run(cli, stack, canary, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.stdout
    assert sm.access_secret_version(name=f"{DB}/versions/latest").payload.data == canary.encode()
    assert files_containing(tmp_path, canary) == []


def test_metadata_only_plan_reports_an_out_of_band_version_without_reading_values(
        cli: Cli, stack: Path, canary: str, gcp: FakeSecretManager, sm: Client) -> None:
    assert run(cli, stack, canary, "apply", "--auto-approve").code == 0
    sm.add_secret_version(request={"parent": DB, "payload": {"data": b"by hand"}})
    gcp.calls.clear()
    result = cli("plan", "--metadata-only", "--format", "json", "-C", str(stack))  # no DB_PASSWORD: no values
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert [(c["secret"], c["action"], c["reasons"]) for c in data["changes"]] == [
        ("payments/db-password", "update", ["value"])]
    assert "AccessSecretVersion" not in gcp.calls
    assert gcp.calls["ListSecrets"] == 1


def test_permissions_prints_least_privilege_custom_roles(cli: Cli, stack: Path) -> None:
    result = cli("permissions", "--target", "gcp-prod", "-C", str(stack))
    assert result.code == 0, result.output
    text = result.stdout
    assert f"gcloud iam roles create cloudsyncPlanMetadata --project={PROJECT}" in text
    metadata_block = text.split("---")[1]
    assert "secretmanager.secrets.list" in metadata_block and "secretmanager.versions.access" not in metadata_block
    assert "- secretmanager.secrets.setIamPolicy" in text.split("---")[3]
    assert "secretmanager.versions.destroy" not in text
    assert "gcloud secrets add-iam-policy-binding cloudsync-fingerprint-key-payments" in text


def test_plaintext_grpc_to_a_remote_host_is_a_one_line_error(
        cli: Cli, gcp_stack: Callable[..., Path], canary: str) -> None:
    stack = gcp_stack(SECRETS)
    config = (stack / "cloudsync.yaml").read_text().replace("127.0.0.1", "grpc://10.9.8.7")
    (stack / "cloudsync.yaml").write_text(config)
    result = run(cli, stack, canary, "plan")
    assert result.code == 1
    assert "unencrypted gRPC to a non-loopback host" in result.output
    assert "hint:" in result.output


def test_drift_reports_values_metadata_readers_and_unmanaged_secrets(
        cli: Cli, stack: Path, canary: str, sm: Client) -> None:
    assert run(cli, stack, canary, "apply", "--auto-approve").code == 0
    assert run(cli, stack, canary, "drift").code == 0
    sm.add_secret_version(request={"parent": DB, "payload": {"data": b"by hand"}})
    policy = sm.get_iam_policy(request={"resource": DB})
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=["user:eve@example.com"])
    sm.set_iam_policy(request={"resource": DB, "policy": policy})
    session = f"projects/{PROJECT}/secrets/payments__session-key"
    labels = {**sm.get_secret(name=session).labels, "env": "dev"}
    sm.update_secret(request={"secret": {"name": session, "labels": labels}, "update_mask": {"paths": ["labels"]}})
    sm.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": "payments__legacy",
                              "secret": {"replication": {"automatic": {}}}})

    result = run(cli, stack, canary, "drift", "--format", "json")
    assert result.code == 2, result.output
    found = {(d["secret"], d["kind"]) for d in json.loads(result.stdout)["drifted"]}
    assert {("payments/db-password", "value"), ("payments/db-password", "access"),
            ("payments/session-key", "metadata")} <= found
    assert any(kind == "unmanaged" and "legacy" in secret for secret, kind in found)


def test_a_saved_plan_is_refused_once_the_secret_changed(
        cli: Cli, stack: Path, canary: str, sm: Client, tmp_path: Path) -> None:
    assert run(cli, stack, canary, "apply", "--auto-approve").code == 0
    (stack / "cloudsync.yaml").write_text((stack / "cloudsync.yaml").read_text().replace("{env: prod}",
                                                                                          "{env: prod, tier: a}"))
    saved = tmp_path / "plan.json"
    assert run(cli, stack, canary, "plan", "--out", str(saved)).code == 0
    sm.add_secret_version(request={"parent": DB, "payload": {"data": b"by hand"}})  # the version moved
    refused = run(cli, stack, canary, "apply", str(saved))
    assert refused.code == 1 and "stale" in refused.output, refused.output

    assert run(cli, stack, canary, "plan", "--out", str(saved)).code == 0
    applied = run(cli, stack, canary, "apply", str(saved))
    assert applied.code == 0, applied.output
    assert sm.get_secret(name=DB).labels["tier"] == "a"
    assert files_containing(tmp_path, canary) == []

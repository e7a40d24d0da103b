"""What a user reads when a cloud call fails, through the installed ``cloudsync`` in a subprocess.

Each error names the target, where it points (endpoint, project, vault URL), the operation,
the kind of failure and a fix in that cloud's terms; ``-v`` adds the SDK's code and the
request id. A plan over three broken targets reports all three in one run and writes
nothing. The real SDK clients talk to closed ports, moto behind a fault proxy, and the GCP
and Azure fakes; the environment is exactly what each test gives, as in a bare CI job.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.conftest import CLI, CliResult, assert_no_canary, files_containing
from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import ENV as AWS_ENV
from tests.fakes.moto_server import FaultProxy, MotoServer

LIST_PERMISSION = {"aws": "secretsmanager:ListSecrets", "gcp": "secretmanager.secrets.list",
                   "azure": "Microsoft.KeyVault/vaults/secrets/readMetadata/action"}


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """The CLI with exactly the environment a test gives (no credentials unless it passes some)."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.home = home

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> CliResult:
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "NO_COLOR": "1",
                "COLUMNS": "400", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials", "AWS_EC2_METADATA_DISABLED": "true",
                # Fail fast where a cloud's SDK would probe an instance metadata server.
                "GCE_METADATA_HOST": f"127.0.0.1:{closed_port()}", "GCE_METADATA_IP": f"127.0.0.1:{closed_port()}",
                **(env or {})}
        proc = subprocess.run([CLI, *args], cwd=self.root, env=full, capture_output=True, text=True, timeout=300,
                              check=False)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def write(self, targets: dict[str, str]) -> None:
        lines = "".join(f"  {name}: {spec}\n" for name, spec in targets.items())
        where = ", ".join(targets)
        secret = f"{{name: payments/db-password, targets: [{where}], value: {{env: DB_PASSWORD}}}}"
        (self.root / "cloudsync.yaml").write_text(
            f"version: 1\nstack: payments\ntargets:\n{lines}policy: {{builtin: false}}\nsecrets:\n  - {secret}\n")


@pytest.fixture
def run(tmp_path: Path) -> Run:
    root = tmp_path / "stack"
    root.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    return Run(root, home)


@pytest.fixture
def clouds(moto_server: MotoServer, gcp_server: FakeSecretManager, azure_fake: AzureFake) -> Iterator[FaultProxy]:
    """The three fakes, emptied; AWS through a fault proxy."""
    moto_server.reset()
    gcp_server.reset()
    azure_fake.reset()
    proxy = FaultProxy(moto_server.url)
    yield proxy
    proxy.close()


def errors_of(result: CliResult) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def the_line(result: CliResult, target: str) -> str:
    (line,) = [e for e in errors_of(result) if e.startswith(f"error: target {target} ")]
    return line


def test_three_unreachable_targets_are_three_errors_in_one_run(run: Run, canary: str, tmp_path: Path) -> None:
    aws, gcp, azure = closed_port(), closed_port(), closed_port()
    run.write({"aws-prod": f'{{provider: aws, region: us-east-1, endpoint: "http://127.0.0.1:{aws}"}}',
               "gcp-prod": f'{{provider: gcp, project: acme-prod, endpoint: "127.0.0.1:{gcp}"}}',
               "azure-prod": f'{{provider: azure, vault_url: "https://127.0.0.1:{azure}"}}'})
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": canary, "AWS_MAX_ATTEMPTS": "1",
           "DB_PASSWORD": canary, "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"}
    plan_file = tmp_path / "plan.json"
    result = run("plan", "--out", str(plan_file), env={**env, "CLOUDSYNC_PLAN_KEY": "k" * 40})
    assert result.code == 1, result.output
    assert len(errors_of(result)) == 3, result.stderr
    line = the_line(result, "aws-prod")
    assert f"(http://127.0.0.1:{aws}" in line and "reading secrets failed (network): ListSecrets" in line
    assert "hint: check the endpoint URL and that it is reachable" in line
    line = the_line(result, "gcp-prod")
    assert f"(project acme-prod at 127.0.0.1:{gcp})" in line and "(network): ListSecrets" in line
    assert "hint: check the endpoint" in line
    line = the_line(result, "azure-prod")
    assert f"(vault https://127.0.0.1:{azure})" in line and "(network): list secrets" in line
    assert "hint: check the vault URL" in line
    assert not plan_file.exists() and result.stdout == ""
    assert "Traceback" not in result.output
    assert_no_canary(canary, result.output)
    assert files_containing(tmp_path, canary) == []

    # drift and access read through the same path: every target's failure, once each
    for command in (["drift"], ["access"]):
        again = run(*command, env=env)
        assert again.code == 1 and len(errors_of(again)) == 3, again.output
        assert_no_canary(canary, again.output)


def test_missing_credentials_say_how_to_sign_in_to_each_cloud(run: Run, clouds: FaultProxy, canary: str,
                                                            gcp_server: FakeSecretManager,
                                                            azure_fake: AzureFake) -> None:
    run.write({"aws-prod": f'{{provider: aws, region: us-east-1, endpoint: "{clouds.url}"}}',
               "gcp-prod": f'{{provider: gcp, project: acme-prod, endpoint: "https://{gcp_server.tls_address}"}}',
               "azure-prod": f'{{provider: azure, vault_url: "{azure_fake.url}"}}'})
    # Trust for the fakes' TLS only: no credential of any cloud.
    env = {"REQUESTS_CA_BUNDLE": azure_fake.client_env()["REQUESTS_CA_BUNDLE"], "DB_PASSWORD": canary,
           "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"}
    result = run("plan", env=env)
    assert result.code == 1, result.output
    assert len(errors_of(result)) == 3, result.stderr
    line = the_line(result, "aws-prod")
    assert f"({clouds.url})" in line and "connecting failed (credentials): no usable AWS credentials" in line
    assert "AWS_PROFILE" in line and "aws sso login" in line
    line = the_line(result, "gcp-prod")
    assert "(credentials)" in line and "project acme-prod" in line
    assert "gcloud auth application-default login" in line and "GOOGLE_APPLICATION_CREDENTIALS" in line
    line = the_line(result, "azure-prod")
    assert f"(vault {azure_fake.url})" in line and "(credentials): no usable Azure credential" in line
    assert "az login" in line and "AZURE_CLIENT_ID" in line
    assert "Traceback" not in result.output
    assert_no_canary(canary, result.output)

    # apply opens every target before it takes any lock: all three are named there too
    applied = run("apply", "--auto-approve", env=env)
    assert applied.code == 1 and len(errors_of(applied)) == 3, applied.output
    assert all("(credentials)" in the_line(applied, t) for t in ("aws-prod", "gcp-prod", "azure-prod"))


@pytest.fixture
def denied(clouds: FaultProxy, run: Run, gcp_server: FakeSecretManager, azure_fake: AzureFake) -> dict[str, str]:
    """Each cloud refuses to list secrets; returns the environment that reaches all three."""
    clouds.fail("ListSecrets", "AccessDeniedException", times=1000, headers={"x-amzn-RequestId": "req-4711-aws"},
                message="User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                        "secretsmanager:ListSecrets because no identity-based policy allows the action")
    gcp_server.deny("ListSecrets")
    azure_fake.deny(LIST_PERMISSION["azure"])
    run.write({"aws-prod": f'{{provider: aws, region: us-east-1, endpoint: "{clouds.url}"}}',
               "gcp-prod": f'{{provider: gcp, project: acme-prod, endpoint: "{gcp_server.address}"}}',
               "azure-prod": f'{{provider: azure, vault_url: "{azure_fake.url}"}}'})
    return {**AWS_ENV, **azure_fake.client_env()}


def test_permission_denied_names_the_missing_permission_in_every_cloud(run: Run, denied: dict[str, str],
                                                                      canary: str) -> None:
    env = {**denied, "AWS_SECRET_ACCESS_KEY": canary, "DB_PASSWORD": canary}
    result = run("plan", env=env)
    assert result.code == 1 and len(errors_of(result)) == 3, result.output
    for target, kind in (("aws-prod", "aws"), ("gcp-prod", "gcp"), ("azure-prod", "azure")):
        line = the_line(result, target)
        assert "reading secrets failed (permission denied)" in line and LIST_PERMISSION[kind] in line, line
        assert f"cloudsync permissions --target {target}`" in line, line
        assert "request id" not in line and "[code" not in line  # those are for -v
    assert_no_canary(canary, result.output)

    verbose = run("-v", "plan", env=env)
    assert verbose.code == 1 and len(errors_of(verbose)) == 3, verbose.output
    assert "[code AccessDeniedException, request id req-4711-aws]" in the_line(verbose, "aws-prod")
    assert "[code PERMISSION_DENIED]" in the_line(verbose, "gcp-prod")  # the fake sends no RequestInfo
    assert re.search(r"\[code ForbiddenByRbac, request id [0-9a-f-]{36}\]", the_line(verbose, "azure-prod"))
    assert_no_canary(canary, verbose.output)


def test_throttling_that_outlasts_the_retries_is_a_quota_error(run: Run, clouds: FaultProxy,
                                                               gcp_server: FakeSecretManager,
                                                               azure_fake: AzureFake) -> None:
    clouds.fail("ListSecrets", "ThrottlingException", times=1000, headers={"x-amzn-RequestId": "req-throttled"})
    gcp_server.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 1000, methods=["ListSecrets"], retry_delay=0.01)
    # azure-core falls back to exponential backoff (~90 s over its 8 retries) on "Retry-After: 0".
    azure_fake.inject(429, 1000, retry_after="0.05", operations=["kv.list"])
    run.write({"aws-prod": f'{{provider: aws, region: us-east-1, endpoint: "{clouds.url}"}}',
               "gcp-prod": f'{{provider: gcp, project: acme-prod, endpoint: "{gcp_server.address}"}}',
               "azure-prod": f'{{provider: azure, vault_url: "{azure_fake.url}"}}'})
    env = {**AWS_ENV, **azure_fake.client_env(), "AWS_MAX_ATTEMPTS": "1"}
    result = run("-v", "plan", "--metadata-only", env=env)
    assert result.code == 1 and len(errors_of(result)) == 3, result.output
    for target in ("aws-prod", "gcp-prod", "azure-prod"):
        line = the_line(result, target)
        assert "reading secrets failed (quota/throttled)" in line and "hint: the cloud's rate limits" in line, line
    assert "[code ThrottlingException, request id req-throttled]" in the_line(result, "aws-prod")
    assert "[code RESOURCE_EXHAUSTED]" in the_line(result, "gcp-prod")
    assert "[code Throttled, request id " in the_line(result, "azure-prod")


def test_a_missing_source_secret_is_not_found_naming_target_and_secret(run: Run, clouds: FaultProxy) -> None:
    (run.root / "cloudsync.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        stack: payments
        targets:
          aws-prod: {{provider: aws, region: us-east-1, endpoint: "{clouds.url}"}}
          local: {{provider: local, path: .cloudsync/local.db}}
        policy: {{builtin: false}}
        secrets:
          - {{name: payments/copy, targets: [local], value: {{from: {{target: aws-prod, name: shared/missing}}}}}}
        """))
    result = run("plan", env=dict(AWS_ENV))
    assert result.code == 1, result.output
    (line,) = [line for line in result.stderr.splitlines() if "error: " in line]
    assert line.startswith("cloudsync.yaml:8:"), line  # at the declaration that reads it
    assert (f"target aws-prod ({clouds.url}): reading the value of shared/missing failed (not found): "
            "GetSecretValue shared/missing") in line


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_an_endpoint_plan_would_refuse_is_refused_by_validate_with_its_position(run: Run, command: str) -> None:
    run.write({"aws-prod": '{provider: aws, region: us-east-1, endpoint: "http://10.1.2.3:4566"}',
               "gcp-prod": '{provider: gcp, project: acme-prod, endpoint: "grpc://10.1.2.3:8085"}',
               "azure-prod": '{provider: azure, vault_url: "http://acme.vault.azure.net"}'})
    result = run(command, env={"DB_PASSWORD": "x"})
    assert result.code == 1, result.output
    lines = errors_of(result) or result.stderr.splitlines()
    found = sorted(line for line in result.stderr.splitlines() if line.startswith("cloudsync.yaml:"))
    assert len(found) == 3, (lines, result.stderr)
    assert re.match(r"cloudsync\.yaml:4:\d+: error: target aws-prod: endpoint http://10\.1\.2\.3:4566 uses plain "
                    r"http to a non-loopback host \(hint: use https://", found[0]), found[0]
    assert re.match(r"cloudsync\.yaml:5:\d+: error: target gcp-prod: endpoint 'grpc://10\.1\.2\.3:8085' asks for "
                    r"unencrypted gRPC", found[1]), found[1]
    assert re.match(r"cloudsync\.yaml:6:\d+: error: target azure-prod: vault_url 'http://acme\.vault\.azure\.net' "
                    r"must be an https URL \(hint: ", found[2]), found[2]

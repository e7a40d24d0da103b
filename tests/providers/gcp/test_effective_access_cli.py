"""Effective access end to end on GCP (the fake, over gRPC): a project grant added out of band
shows in drift, the access report (json, text, markdown, html), the plan and the built-in policy,
and removing it clears all of it. The installed ``cloudsync`` runs in a subprocess, as in CI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.iam.v1 import policy_pb2

from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.gcp.iam_services import Clients
from tests.providers.gcp.conftest import PROJECT

Cli = Callable[..., CliResult]
API = f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"
OPS = "group:ops@example.com"
CUSTOM = f"projects/{PROJECT}/roles/secretReader"


def stack_text(endpoint: str, extra: str = "") -> str:
    # A prod secret the built-in pack accepts, so only the broad grant can fail it.
    return f"""\
version: 1
stack: payments
targets:
  gcp-prod: {{provider: gcp, project: {PROJECT}, endpoint: "{endpoint}"{extra}}}
principals:
  payments-api-prod: {{gcp: "{API}"}}
secrets:
  - name: payments/db-password
    description: Postgres password
    targets: [gcp-prod]
    labels: {{env: prod, owner: team-payments}}
    value: {{env: DB_PASSWORD}}
    rotation: 30d
    expires: 90d  # on GCP expiry deletes the secret; the pack asks prod secrets for one
    deletion_protection: true
    readers: [payments-api-prod]
"""


@pytest.fixture
def iam(gcp: FakeSecretManager) -> Iterator[Clients]:
    clients = Clients(gcp.address)
    clients.iam.create_role(request={"parent": f"projects/{PROJECT}", "role_id": "secretReader", "role": {
        "title": "reads secrets", "included_permissions": ["secretmanager.versions.access"]}})
    yield clients
    clients.close()


def set_project_binding(iam: Clients, role: str, members: list[str]) -> None:
    resource = f"projects/{PROJECT}"
    current = iam.projects.get_iam_policy(request={"resource": resource, "options": {"requested_policy_version": 3}})
    policy = policy_pb2.Policy(version=current.version, etag=current.etag)
    policy.bindings.extend(b for b in current.bindings if b.role != role)
    if members:
        policy.bindings.add(role=role, members=members)
    iam.projects.set_iam_policy(request={"resource": resource, "policy": policy})


def test_a_project_grant_is_seen_everywhere_and_cleared_when_removed(
        cli: Cli, gcp: FakeSecretManager, iam: Clients, write_stack: Callable[..., Path], canary: str,
        tmp_path: Path) -> None:
    stack = write_stack(stack_text(gcp.address))
    env = {"DB_PASSWORD": canary}
    outputs: list[str] = []

    def run(*args: str) -> CliResult:
        result = cli(*args, cwd=stack, env=env)
        outputs.append(result.output)
        return result

    applied = run("apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert run("drift").code == 0
    clean = json.loads(run("access", "--format", "json").stdout)
    [secret] = clean["secrets"]
    assert [(r["name"], r["declared"], r["via"]) for r in secret["readers"]] == [("payments-api-prod", True, "secret")]
    assert secret["readers_complete"] is True

    # Out of band: a custom role carrying secretmanager.versions.access, bound on the whole project.
    set_project_binding(iam, CUSTOM, [OPS])

    drift = run("drift", "--format", "json")
    assert drift.code == 2, drift.output
    inherited = [d for d in json.loads(drift.stdout)["drifted"] if d["kind"] == "inherited"]
    assert [(d["address"], d["principal"], d["via"]) for d in inherited] == [
        ("gcp-prod:payments/db-password", OPS, "project")]

    report = json.loads(run("access", "--format", "json").stdout)
    [secret] = report["secrets"]
    undeclared = [r for r in secret["readers"] if not r["declared"]]
    assert [(r["principal"], r["via"], r["scope"], r["grant"], r["conditional"]) for r in undeclared] == [
        (OPS, "project", f"projects/{PROJECT}", CUSTOM, False)]
    blast = json.loads(run("access", "--principal", OPS, "--format", "json").stdout)
    assert [s["address"] for s in blast["secrets"]] == ["gcp-prod:payments/db-password"]
    assert OPS in run("access").stdout and OPS in run("access", "--format", "markdown").stdout
    page = tmp_path / "access.html"
    assert run("access", "--format", "html", "--out", str(page)).code == 0
    assert OPS in page.read_text(encoding="utf-8")

    plan = run("plan", "--format", "json")
    assert plan.code == 1, plan.output  # CS014 blocks a prod secret with an undeclared reader
    body = json.loads(plan.stdout)
    assert [(u["principal"], u["via"]) for u in body["undeclared_readers"]] == [(OPS, "project")]
    assert [(v["policy"], v["address"]) for v in body["policy"]["violations"]] == [
        ("CS014", "gcp-prod:payments/db-password")]

    set_project_binding(iam, CUSTOM, [])
    assert run("drift").code == 0
    assert json.loads(run("access", "--format", "json").stdout)["summary"]["with_undeclared_readers"] == 0
    final = run("plan", "--format", "json", "--detailed-exitcode")
    assert final.code == 0, final.output

    assert_no_canary(canary, *outputs, page.read_text(encoding="utf-8"))
    assert files_containing(stack, canary) == []


def test_a_denied_project_policy_says_unknown_not_none(cli: Cli, gcp: FakeSecretManager, iam: Clients,
                                                       write_stack: Callable[..., Path]) -> None:
    stack = write_stack(stack_text(gcp.address))
    env = {"DB_PASSWORD": "not-a-canary-value-here"}
    assert cli("apply", "--auto-approve", cwd=stack, env=env).code == 0
    set_project_binding(iam, CUSTOM, [OPS])
    gcp.deny("Projects.GetIamPolicy")
    report = json.loads(cli("access", "--format", "json", cwd=stack, env=env).stdout)
    [secret] = report["secrets"]
    assert secret["readers_complete"] is False
    assert any("resourcemanager.projects.getIamPolicy" in r for r in secret["incomplete_reasons"])
    assert "unknown" in cli("access", cwd=stack, env=env).stdout


def test_a_target_that_opts_out_says_unknown_and_calls_no_iam(cli: Cli, gcp: FakeSecretManager,
                                                               write_stack: Callable[..., Path]) -> None:
    stack = write_stack(stack_text(gcp.address, ", access_scan: false"))
    env = {"DB_PASSWORD": "not-a-canary-value-here"}
    assert cli("apply", "--auto-approve", cwd=stack, env=env).code == 0
    report = json.loads(cli("access", "--format", "json", cwd=stack, env=env).stdout)
    [secret] = report["secrets"]
    assert secret["readers_complete"] is False
    assert any("access_scan is false" in r for r in secret["incomplete_reasons"])
    assert not any(method.startswith(("Projects.", "IAM.")) for method in gcp.calls)

"""Least privilege on GCP: each operation works with exactly the permissions ``cloudsync
permissions`` prints, and fails naming any one taken away (the fake's ``grant_only``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import yaml
from google.iam.v1 import policy_pb2

from tests.conftest import CliResult
from tests.fakes.gcp import FakeSecretManager
from tests.providers.contract.clouds import PROJECT, Gcp
from tests.providers.contract.drive import Driver
from tests.providers.contract.privilege import Scenario, check_operation

# The permissions of the predefined roles `cloudsync permissions` tells to bind on one secret.
ROLE_PERMISSIONS = {"roles/secretmanager.secretAccessor": {"secretmanager.versions.access"}}

BEFORE = """\
- name: payments/rotating
  targets: [T]
  value: {env: ROTATING}
  readers: [api]
- name: payments/retired
  targets: [T]
  value: {generate: {length: 24}}
"""
# What apply is asked to do: a new value (pruning the old version, keep_versions 1), a new
# reader, a new secret (whose CreateSecret answer is lost: the retry finds it with GetSecret),
# and a secret no longer declared.
AFTER = """\
- name: payments/rotating
  targets: [T]
  value: {env: ROTATING}
  readers: [api, worker]
- name: payments/new
  targets: [T]
  value: {generate: {length: 24}}
  readers: [api]
"""


def printed(cli: Callable[..., CliResult], root: Path) -> dict[str, set[str]]:
    """Operation -> the permissions printed for it: project-wide ones by name, and one bound on a
    single secret as ``<secret>::<permission>``."""
    result = cli("permissions", "--target", Gcp.target, "-C", str(root))
    assert result.code == 0, result.output
    needed: dict[str, set[str]] = {}
    for document in yaml.safe_load_all(result.stdout):
        if isinstance(document, dict) and "includedPermissions" in document:
            needed[document["title"].split()[1]] = set(document["includedPermissions"])
    assert set(needed) == {"plan-metadata", "plan", "apply"}, result.stdout
    # "The plan identity also reads the value of one secret": a binding on that secret alone.
    (binding,) = [line for line in result.stdout.splitlines() if "add-iam-policy-binding" in line]
    (role,) = [line.split("--role=", 1)[1].split()[0] for line in result.stdout.splitlines() if "--role=" in line]
    secret = binding.split("add-iam-policy-binding", 1)[1].split()[0]
    assert secret == "cloudsync-fingerprint-key-payments"
    needed["plan"] |= {f"{secret}::{permission}" for permission in ROLE_PERMISSIONS[role]}
    return needed


def _grant(gcp: FakeSecretManager, tokens: Iterable[str]) -> None:
    project = {t for t in tokens if "::" not in t}
    on_secrets: dict[str, set[str]] = {}
    for token in set(tokens) - project:
        secret, permission = token.split("::")
        on_secrets.setdefault(secret, set()).add(permission)
    gcp.grant_only(project, on_secrets=on_secrets)


@pytest.fixture
def scenario(gcp: FakeSecretManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    cloud = Gcp(tmp_path, gcp)

    def prepare(operation: str) -> Driver:
        gcp.reset()
        driver = cloud.driver("keep_versions: 1")
        monkeypatch.setenv("ROTATING", "first-value-of-the-rotating-secret")
        driver.declare(BEFORE)
        driver.applied()
        # A project owner: the scan asks IAM what roles/owner carries, so iam.roles.get is exercised.
        gcp.directory.set_iam_policy(f"projects/{PROJECT}", "projects", policy_pb2.Policy(
            bindings=[policy_pb2.Binding(role="roles/owner", members=["user:owner@example.com"])]))
        if operation == "apply":
            monkeypatch.setenv("ROTATING", "second-value-of-the-rotating-secret")
            driver.declare(AFTER)
            gcp.lose("CreateSecret", where="/secrets/payments__new")
        return driver

    return Scenario(prepare, lambda tokens: _grant(gcp, tokens),
                    mentions=lambda token: (token.rsplit("::", 1)[-1],),
                    scan=frozenset({"iam.roles.get", "resourcemanager.projects.getIamPolicy"}),
                    fallback=frozenset({"cloudasset.assets.searchAllIamPolicies", "cloudasset.assets.listResource",
                                              "serviceusage.services.use"}))


@pytest.mark.parametrize("operation", ["plan-metadata", "plan", "apply"])
def test_exactly_the_printed_permissions_suffice_and_each_is_needed(
        operation: str, scenario: Scenario, cli: Callable[..., CliResult], tmp_path: Path,
        gcp: FakeSecretManager) -> None:
    Gcp(tmp_path, gcp).driver().declare(BEFORE)
    check_operation(scenario, printed(cli, tmp_path / "stack"), operation)

"""Fixtures of the AWS provider tests: moto, fake credentials, stacks pointed at moto."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from cloudsync.apply import ApplyReport, apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.base import ProviderContext
from tests.fakes.moto_iam import IamMoto
from tests.fakes.moto_server import ENV, UNSET, FaultProxy, MotoServer

REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account
READER_A = "arn:aws:iam::123456789012:role/payments-api"
READER_B = "arn:aws:iam::123456789012:role/billing-worker"


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    """A clean moto server and fake credentials in this process's environment."""
    moto_server.reset()
    for key in UNSET:
        monkeypatch.delenv(key, raising=False)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    yield moto_server


@pytest.fixture
def aws_env(aws: MotoServer) -> dict[str, str]:
    """The environment a ``cloudsync`` subprocess needs to reach moto."""
    return dict(ENV)


@pytest.fixture
def sm(aws: MotoServer) -> Any:
    """A raw boto3 client on moto, for out-of-band edits and direct checks."""
    return boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws.url)


@pytest.fixture
def provider(aws: MotoServer, tmp_path: Path) -> Iterator[AwsProvider]:
    """An AwsProvider for stack "payments" on moto, to call the adapter directly."""
    yield from _provider(aws.url, tmp_path)


def _provider(endpoint: str, root: Path, **extra: Any) -> Iterator[AwsProvider]:
    config = AwsTarget(provider="aws", region=REGION, endpoint=endpoint, **extra)
    adapter = AwsProvider("aws-prod", config, ProviderContext(stack="payments", root=root))
    try:
        yield adapter
    finally:
        adapter.close()


def provider_via(proxy: FaultProxy, root: Path, **extra: Any) -> Iterator[AwsProvider]:
    """An AwsProvider that talks to moto through a fault proxy."""
    return _provider(proxy.url, root, **extra)


@pytest.fixture
def proxy(aws: MotoServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto."""
    server = FaultProxy(aws.url)
    yield server
    server.close()


def stack_yaml(endpoint: str, secrets: str, *, target_extra: str = "", stack: str = "payments") -> str:
    """A cloudsync.yaml with one ``aws`` target named aws-prod pointed at ``endpoint``."""
    body = textwrap.dedent(secrets).strip("\n")
    return (
        "version: 1\n"
        f"stack: {stack}\n"
        "targets:\n"
        f"  aws-prod: {{provider: aws, region: {REGION}, endpoint: \"{endpoint}\"{target_extra}}}\n"
        "principals:\n"
        f"  payments-api: {{aws: \"{READER_A}\"}}\n"
        f"  billing-worker: {{aws: \"{READER_B}\"}}\n"
        "secrets:\n" + textwrap.indent(body, "  ") + "\n"
    )


DB_PASSWORD = """\
- name: payments/db-password
  description: Postgres password
  targets: [aws-prod]
  labels: {env: prod}
  value: {env: DB_PASSWORD}
  readers: [payments-api]
"""


@dataclass
class Engine:
    """Drives cloudsync's engine (plan, apply) on one stack folder, in process."""

    root: Path

    def write(self, text: str) -> None:
        (self.root / "cloudsync.yaml").write_text(text)

    def plan(self, *, metadata_only: bool = False) -> PlanRun:
        stack = load_stack(self.root)
        with open_session(stack) as session:
            return build_plan(session, list(stack.config.targets), metadata_only=metadata_only)

    def apply(self, sleep: Callable[[float], None] | None = None) -> tuple[PlanRun, ApplyReport]:
        stack = load_stack(self.root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets))
            report = apply_plan(session, run, sleep=sleep or (lambda _s: None))
        return run, report

    def calls(self, *, metadata_only: bool = False) -> tuple[PlanRun, dict[str, int]]:
        """Plan and return the API calls per operation it made."""
        stack = load_stack(self.root)
        with open_session(stack) as session:
            run = build_plan(session, list(stack.config.targets), metadata_only=metadata_only)
            counts = dict(session.provider("aws-prod").api_calls)
        return run, counts


@pytest.fixture
def engine(aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """An in-process engine on a stack folder (audit log kept inside tmp_path)."""
    root = tmp_path / "stack"
    root.mkdir()
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return Engine(root)


def changes(run: PlanRun) -> list[tuple[str, str, tuple[str, ...]]]:
    """The plan's real changes as (address, action, reasons)."""
    return [(c.address, c.action.value, tuple(r.value for r in c.reasons)) for c in run.plan.real_changes]


def an_hour_ago(sm: Any, names: list[str]) -> None:
    """Play that cloudsync wrote ``names`` an hour ago: sync marks (``<written>[r][@<verified>]``)
    and LastChangedDate move back (moto's clock state, the one thing a test cannot wait for).
    CloudTrail events stay where they are."""
    from moto.secretsmanager.models import secretsmanager_backends

    from cloudsync.providers.aws.remote import SYNCED_TAG

    for name in names:
        mark = tags_of(sm, name)[SYNCED_TAG]
        written, _, verified = mark.partition("@")
        digits = written.rstrip("r")
        moved = f"{int(digits) - 3600}{written[len(digits):]}" + (f"@{int(verified) - 3600}" if verified else "")
        sm.tag_resource(SecretId=name, Tags=[{"Key": SYNCED_TAG, "Value": moved}])
        secret = secretsmanager_backends[MOTO_ACCOUNT][REGION].secrets[name]
        secret.last_changed_date = int(secret.last_changed_date) - 3600


def tags_of(sm: Any, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=name).get("Tags", [])}


def assert_applied(report: ApplyReport) -> None:
    failed = [(r.change.address, r.error) for r in report.results if r.outcome.value != "applied"]
    assert not failed, failed


@pytest.fixture(scope="session")
def iam_moto() -> Iterator[IamMoto]:
    """A moto server of its own (a child process) that can enforce IAM (see tests/fakes/moto_iam.py)."""
    server = IamMoto()
    yield server
    server.stop()

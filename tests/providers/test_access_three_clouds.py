"""`cloudsync access --principal X` across three clouds at once: one stack with an AWS (moto), a
GCP (gRPC fake) and an Azure (HTTPS fake) target; a principal's blast radius is exactly the
secrets it can read in each, however its id is written in each cloud."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudsync.access.collect import access_report
from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session
from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import MotoServer
from tests.providers.three_clouds import connect

API = {"aws": "arn:aws:iam::123456789012:role/payments-api",
       "gcp": "serviceAccount:api@acme-prod.iam.gserviceaccount.com",
       "azure": "00000000-0000-4000-8000-0000000000a1"}
WORKER = {"aws": "arn:aws:iam::123456789012:role/billing-worker",
          "gcp": "serviceAccount:worker@acme-prod.iam.gserviceaccount.com",
          "azure": "00000000-0000-4000-8000-0000000000a2"}


@pytest.fixture
def clouds(moto_server: MotoServer, gcp_server: FakeSecretManager, azure_fake: AzureFake,
           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    targets = connect(moto_server, gcp_server, azure_fake, monkeypatch)
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("CLOUDSYNC_FINGERPRINT_KEY", "k" * 40)
    root = tmp_path / "stack"
    root.mkdir()
    principal = "".join(f"{k}: \"{v}\", " for k, v in API.items())[:-2]
    worker = "".join(f"{k}: \"{v}\", " for k, v in WORKER.items())[:-2]
    (root / "cloudsync.yaml").write_text(f"""\
version: 1
stack: payments
targets:
{targets}principals:
  api: {{{principal}}}
  worker: {{{worker}}}
policy: {{builtin: false}}
secrets:
  - {{name: payments/db-password, targets: [aws-prod, gcp-prod, azure-prod], value: {{generate: {{}}}}, readers: [api]}}
  - {{name: payments/smtp-password, targets: [aws-prod, gcp-prod, azure-prod], value: {{generate: {{}}}},
     readers: [worker]}}
  - {{name: payments/shared-key, targets: [gcp-prod], value: {{generate: {{}}}}, readers: [api, worker]}}
""")
    yield root


def test_a_principal_blast_radius_is_exact_across_three_clouds(clouds: Path) -> None:
    stack = load_stack(clouds)
    targets = list(stack.config.targets)
    with open_session(stack) as session:
        run = build_plan(session, targets)
        report = apply_plan(session, run, sleep=lambda _s: None)
    assert report.ok, [(r.change.address, r.error) for r in report.results if r.error]

    today = datetime.now(UTC).date()
    for who, ids in (("api", API), ("worker", WORKER)):
        found = access_report(load_stack(clouds), targets, today=today, principal=who)
        expected = {"api": {"aws-prod:payments/db-password", "gcp-prod:payments/db-password",
                            "azure-prod:payments/db-password", "gcp-prod:payments/shared-key"},
                    "worker": {"aws-prod:payments/smtp-password", "gcp-prod:payments/smtp-password",
                               "azure-prod:payments/smtp-password", "gcp-prod:payments/shared-key"}}[who]
        assert {s.address for s in found.secrets} == expected, who
        assert {p.principal for p in found.principals} == set(ids.values()), who
        assert all(r.name == who and r.declared for s in found.secrets for r in s.readers), who

    # By one cloud's id, only that cloud's secrets.
    by_id = access_report(load_stack(clouds), targets, today=today, principal=API["azure"])
    assert {s.address for s in by_id.secrets} == {"azure-prod:payments/db-password"}

"""A certificate's secret (``managed: true``) is Key Vault's, never the stack's.

Creating a certificate in Key Vault also creates a secret of the same name holding the
certificate and its key; the secrets API refuses to write, update or delete it. So
``import`` must not offer it, and drift must not report it as an unmanaged secret of the
stack; declaring its name is a conflict shown by the plan, before anything is attempted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudsync.adopt import import_target
from cloudsync.config.loader import load_stack
from cloudsync.drift import DriftKind, classify
from cloudsync.plan.build import open_session
from tests.fakes.azure import AzureFake
from tests.providers.azure.conftest import OutOfBand
from tests.providers.azure.stacks import apply, plan

PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
DECLARED = """
- name: payments/db-password
  targets: [azure-prod]
  value: {generate: {length: 24}}
"""


@pytest.fixture
def vault(azure: AzureFake, oob: OutOfBand) -> AzureFake:
    """A certificate and a plain unowned secret, both inside the stack's name scope."""
    azure.vault.add_certificate("payments--tls", PEM)
    oob.secrets.set_secret("payments--legacy-token", "theirs")
    return azure


def test_import_offers_plain_secrets_but_not_a_certificates(vault: AzureFake,
                                                            azure_stack: Callable[..., Path]) -> None:
    stack = load_stack(azure_stack(DECLARED))
    with open_session(stack) as session:
        found = import_target(stack, session, "azure-prod", prefix=None, adopt=True)
    assert [s["name"] for s in found.secrets] == ["payments/legacy-token"]


def test_drift_does_not_report_a_certificates_secret_as_unmanaged(vault: AzureFake,
                                                                  azure_stack: Callable[..., Path]) -> None:
    root = azure_stack(DECLARED)
    apply(root)
    run = plan(root, metadata_only=True)
    stack = load_stack(root)
    report = classify(stack, run.plan, run.actual, {(w.target, w.remote_name) for w in run.desired},
                      today=datetime.now(UTC).date())
    assert [(d.secret, d.kind) for d in report.drifted] == [("payments--legacy-token", DriftKind.UNMANAGED)]


def test_declaring_a_certificates_name_is_a_plan_time_conflict(vault: AzureFake,
                                                               azure_stack: Callable[..., Path]) -> None:
    run = plan(azure_stack(DECLARED.replace("payments/db-password", "payments/tls")))
    assert run.plan.real_changes == []
    (conflict,) = [d for d in run.plan.diagnostics if "payments/tls" in d.message]
    assert "not managed by cloudsync" in conflict.message
    assert [v.value for v in vault.vault.snapshot("payments--tls").versions] == [PEM]  # type: ignore[union-attr]

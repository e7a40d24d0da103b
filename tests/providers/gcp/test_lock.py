"""The apply lock of a GCP target, a lease: one apply at a time, free soon after its holder dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.cloud import secretmanager

from cloudsync.providers.base import ProviderContext
from cloudsync.providers.gcp import GcpProvider
from cloudsync.providers.gcp.rules import GcpTarget
from cloudsync.providers.lease import LeaseTerms
from tests.conftest import CliResult
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT
from tests.providers.gcp.test_lifecycle import SECRETS
from tests.providers.leases import Clock, check_lease_contract

LOCK = f"projects/{PROJECT}/secrets/cloudsync-lock-payments"


@pytest.fixture
def provider(gcp: FakeSecretManager, tmp_path: Path) -> Iterator[GcpProvider]:
    config = GcpTarget(provider="gcp", project=PROJECT, endpoint=gcp.address)
    adapter = GcpProvider("gcp-prod", config, ProviderContext(stack="payments", root=tmp_path))
    yield adapter
    adapter.close()


@pytest.fixture
def clock(gcp: FakeSecretManager, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for cloudsync and the fake: GCP itself deletes a marker whose ttl ran out."""
    moving = Clock()
    monkeypatch.setattr(gcp.store, "_clock", moving.timestamp)
    return moving


def test_the_lock_is_a_lease_held_while_renewed_and_taken_over_after_its_holder_dies(
        provider: GcpProvider, clock: Clock) -> None:
    check_lease_contract(provider.target_lock, clock)


def test_the_marker_carries_its_lease_as_a_ttl_that_gcp_enforces(
        provider: GcpProvider, clock: Clock, sm: secretmanager.SecretManagerServiceClient) -> None:
    lock = provider.target_lock()
    assert lock.acquire("ci job 7", LeaseTerms(duration=timedelta(minutes=2), clock=clock)) is None
    marker = sm.get_secret(name=LOCK)
    assert marker.annotations["holder"] == "ci job 7"
    assert timedelta(minutes=1, seconds=59) <= marker.expire_time - clock() <= timedelta(minutes=2, seconds=1)
    clock.advance(timedelta(minutes=2, seconds=1))  # the holder died: GCP deletes the marker by itself
    assert list(sm.list_secrets(request={"parent": f"projects/{PROJECT}"})) == []


def test_an_expired_lease_left_by_a_dead_process_is_taken_over_by_the_next_apply(
        gcp_stack: Callable[..., Path], provider: GcpProvider, canary: str, monkeypatch: pytest.MonkeyPatch,
        gcp: FakeSecretManager, sm: secretmanager.SecretManagerServiceClient) -> None:
    monkeypatch.setenv("DB_PASSWORD", canary)
    root = gcp_stack(SECRETS)
    dead = provider.target_lock()
    assert dead.acquire("crashed", LeaseTerms()) is None  # never renewed, never released
    monkeypatch.setattr(gcp.store, "_clock", (Clock().now + timedelta(minutes=3)).timestamp)  # its ttl ran out
    engine.apply(root)
    assert "cloudsync-lock-payments" not in [s.name.rsplit("/", 1)[1] for s in
                                              sm.list_secrets(request={"parent": f"projects/{PROJECT}"})]


def test_force_unlock_names_what_it_removes(gcp_stack: Callable[..., Path], provider: GcpProvider,
                                           cli: Callable[..., CliResult], canary: str) -> None:
    root = gcp_stack(SECRETS)
    assert provider.target_lock().acquire("ci job 99 on runner-3", LeaseTerms()) is None
    forced = cli("force-unlock", "--target", "gcp-prod", "-C", str(root), "--yes")
    assert forced.code == 0, forced.output
    assert (f"the secret cloudsync-lock-payments in project {PROJECT} is held by ci job 99 on runner-3 since"
            in forced.stdout)
    assert "its lease expires in" in forced.stdout and "Removed the apply lock of target gcp-prod" in forced.stdout
    assert provider.target_lock().holders(LeaseTerms()) == []

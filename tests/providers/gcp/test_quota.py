"""Applies against Secret Manager's quotas, enforced by the fake as the service enforces them:
a call over the project's (or a secret's) quota is RESOURCE_EXHAUSTED with a RetryInfo.

Counts on the wire, never timers: what the fake served and refused, and how many calls reached
it before the end of a RetryInfo delay it had sent (``early``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import grpc
from google.cloud import secretmanager

from cloudsync.config.loader import load_stack
from cloudsync.providers.base import ProviderContext
from cloudsync.providers.gcp import GcpProvider
from tests.fakes.gcp import FakeSecretManager
from tests.providers.gcp import engine
from tests.providers.gcp.conftest import PROJECT

PER_MINUTE = 3_000  # the project's raised quotas, on both sides: 50 writes/s keeps the test short
CREATES = 40


def secrets_yaml(count: int) -> str:
    lines = []
    for i in range(count):
        lines.append(f"- {{name: app/s{i:03d}, targets: [gcp-prod], value: {{generate: {{length: 16}}}}"
                     + (", readers: [api]}" if i % 4 == 0 else "}"))
    return "\n".join(lines) + "\n"


def test_an_apply_at_the_projects_quota_fails_no_change_and_is_never_refused(
        gcp: FakeSecretManager, gcp_stack: Callable[..., Path]) -> None:
    root = gcp_stack(secrets_yaml(CREATES),
                     target_extra=f", reads_per_minute: {PER_MINUTE}, writes_per_minute: {PER_MINUTE}")
    quota = gcp.enforce_quota(reads_per_minute=PER_MINUTE, writes_per_minute=PER_MINUTE)
    outcome = engine.apply(root)
    assert outcome.report is not None
    assert [r.outcome.value for r in outcome.report.results] == ["applied"] * CREATES
    # Paced below the quota with a burst smaller than the service's bucket: nothing refused,
    # so no retry was spent (a burst of two seconds' worth was refused at the start before).
    assert quota.project.throttled == {} and gcp.early == {}
    writes = quota.project.served["write"]
    assert writes == sum(gcp.calls[m] for m in ("CreateSecret", "AddSecretVersion", "UpdateSecret", "SetIamPolicy",
                                                "DeleteSecret"))
    # Two writes per create (the secret with its value record, the version), a third with readers;
    # plus the fingerprint key (two) and the apply lock (create, delete).
    assert writes == 2 * CREATES + CREATES // 4 + 4
    assert engine.plan(root).changes() == []


def test_a_retry_info_holds_back_every_writer_of_the_project_not_just_the_refused_one(
        gcp: FakeSecretManager, tmp_path: Path) -> None:
    (tmp_path / "cloudsync.yaml").write_text(
        f"version: 1\nstack: payments\ntargets:\n  gcp-prod: {{provider: gcp, project: {PROJECT}, "
        f"endpoint: '{gcp.address}'}}\n")
    provider = GcpProvider("gcp-prod", load_stack(tmp_path).config.targets["gcp-prod"],  # type: ignore[arg-type]
                           ProviderContext(stack="payments", root=tmp_path))
    client, caller, parent = provider.client, provider.caller, f"projects/{PROJECT}"
    caller("CreateSecret", client.create_secret, secretmanager.CreateSecretRequest(
        parent=parent, secret_id="first", secret=secretmanager.Secret(replication={"automatic": {}})),
        resource=f"{parent}/secrets/first")
    # The service refuses the next version write and asks for a pause long enough to see.
    gcp.inject(grpc.StatusCode.RESOURCE_EXHAUSTED, 1, methods=["AddSecretVersion"], retry_delay=0.6)
    add = secretmanager.AddSecretVersionRequest(parent=f"{parent}/secrets/first", payload={"data": b"v"})
    backing_off = threading.Event()
    wait = caller.sleep

    def sleep(seconds: float) -> None:  # the refused caller got its answer and is about to wait
        backing_off.set()
        wait(seconds)

    caller.sleep = sleep
    writer = threading.Thread(target=caller, args=("AddSecretVersion", client.add_secret_version, add),
                              kwargs={"resource": f"{parent}/secrets/first"})
    writer.start()
    assert backing_off.wait(30)
    # Another writer of the same project, on another secret: it waits out the delay too.
    caller("CreateSecret", client.create_secret, secretmanager.CreateSecretRequest(
        parent=parent, secret_id="second", secret=secretmanager.Secret(replication={"automatic": {}})),
        resource=f"{parent}/secrets/second")
    writer.join()
    assert gcp.calls["AddSecretVersion"] == 2  # refused once, then written
    assert gcp.early == {}  # no write reached the service before the delay it asked for ended
    provider.close()

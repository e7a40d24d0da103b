"""`--replace` through every provider's real client at once: one generated secret in an AWS
(moto), a GCP (gRPC fake) and an Azure (HTTPS fake) target, and its copy in the local store,
all get the new value in one apply; a value from the environment is refused; no value leaks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudsync.apply import apply_plan
from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import build_plan, open_session
from cloudsync.plan.planfile import write_plan
from cloudsync.plan.render import render_json, render_markdown, render_text
from cloudsync.values.fingerprint import Fingerprinter
from tests.conftest import files_containing
from tests.fakes.azure import AzureFake
from tests.fakes.gcp import FakeSecretManager
from tests.fakes.moto_server import MotoServer
from tests.providers.three_clouds import connect

CLOUDS = ("aws-prod", "gcp-prod", "azure-prod")
KEY = "payments/api-key"
COPY = "payments/api-key-copy"
CHECK = Fingerprinter(b"t" * 40)  # the test's own key: compares values without holding them in messages


@pytest.fixture
def stack(moto_server: MotoServer, gcp_server: FakeSecretManager, azure_fake: AzureFake,
          monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canary: str) -> Iterator[Path]:
    targets = connect(moto_server, gcp_server, azure_fake, monkeypatch)
    monkeypatch.setenv("CLOUDSYNC_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", "p" * 40)
    monkeypatch.setenv("SMTP_PASSWORD", canary)
    root = tmp_path / "stack"
    root.mkdir()
    (root / "cloudsync.yaml").write_text(f"""\
version: 1
stack: payments
targets:
{targets}  local: {{provider: local}}
policy: {{builtin: false}}
secrets:
  - {{name: {KEY}, targets: [aws-prod, gcp-prod, azure-prod], value: {{generate: {{length: 40}}}}}}
  - {{name: {COPY}, targets: [local], value: {{from: {{target: gcp-prod, name: {KEY}}}}}}}
  - {{name: payments/smtp-password, targets: [aws-prod, azure-prod], value: {{env: SMTP_PASSWORD}}}}
""")
    yield root


def _fingerprints(root: Path) -> dict[str, str]:
    stack = load_stack(root)
    with open_session(stack) as session:
        found = {f"{t}:{KEY}": CHECK.of(session.read_value(t, KEY)) for t in CLOUDS}
        found[f"local:{COPY}"] = CHECK.of(session.read_value("local", COPY))
        raw = session.read_value("aws-prod", KEY).reveal_text()
    found["raw"] = raw  # kept only to search the outputs for it
    return found


def test_one_apply_replaces_a_secret_in_three_clouds_and_its_copy(stack: Path, canary: str, tmp_path: Path) -> None:
    loaded = load_stack(stack)
    targets = list(loaded.config.targets)
    with open_session(loaded) as session:
        first = apply_plan(session, build_plan(session, targets), sleep=lambda _s: None)
    assert first.ok, [(r.change.address, r.error) for r in first.results if r.error]
    before = _fingerprints(stack)
    old_raw = before.pop("raw")

    outputs: list[str] = []
    with open_session(load_stack(stack)) as session:
        run = build_plan(session, targets, replace=[KEY], grace=None)
        changes = {(c.address, c.action.value, tuple(r.value for r in c.reasons), c.value.mode.value if c.value else None)
                   for c in run.plan.real_changes}
        assert changes == {*((f"{t}:{KEY}", "update", ("replace",), "generate") for t in CLOUDS),
                           (f"local:{COPY}", "update", ("value",), "derived")}
        outputs += [render_text(run.plan).plain, render_json(run.plan), render_markdown(run.plan)]
        write_plan(run, tmp_path / "replace.plan", stack)
        report = apply_plan(session, run, sleep=lambda _s: None)
    assert report.ok, [(r.change.address, r.error) for r in report.results if r.error]

    after = _fingerprints(stack)
    new_raw = after.pop("raw")
    new = after[f"aws-prod:{KEY}"]
    assert all(after[f"{t}:{KEY}"] == new for t in CLOUDS)  # one new value in every cloud
    assert all(before[f"{t}:{KEY}"] != new for t in CLOUDS)  # ... that is not the old one
    assert after[f"local:{COPY}"] == new  # the copy follows in the same apply

    with open_session(load_stack(stack)) as session:
        assert build_plan(session, targets).plan.real_changes == []  # converged: nothing lags an apply behind
    outputs.append((tmp_path / "replace.plan").read_text())
    outputs.append((tmp_path / "audit.jsonl").read_text())
    assert '"replace"' in outputs[-1]  # the audit log records why
    for needle in (canary, old_raw, new_raw):
        assert not [text[:40] for text in outputs if needle in text]
        assert files_containing(tmp_path, needle, skip=lambda p: p.suffix == ".db") == []


def test_a_value_from_the_environment_is_refused_in_every_cloud(stack: Path, canary: str) -> None:
    loaded = load_stack(stack)
    with open_session(loaded) as session, pytest.raises(CloudsyncError) as refused:
        build_plan(session, list(loaded.config.targets), replace=["payments/smtp-password"])
    [diag] = refused.value.diagnostics
    assert "the environment variable SMTP_PASSWORD, which cloudsync does not control" in diag.message
    assert diag.file is not None and diag.file.endswith("cloudsync.yaml") and diag.line
    assert diag.hint is not None and "set SMTP_PASSWORD to the new credential" in diag.hint
    assert canary not in diag.render()

"""Resolving a stack's values in one run: each source read once, dependencies not yet written."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import open_session, resolve_values
from cloudsync.providers.local import LocalProvider, LocalStore
from cloudsync.values.secret import SecretValue

STACK = """\
version: 1
stack: shop
targets:
  upstream: {provider: local, path: .cloudsync/upstream.db}
  local: {provider: local}
secrets:
  - {name: vendor/a, targets: [local], value: {from: {target: upstream, name: vendor/token}}}
  - {name: vendor/b, targets: [local], value: {from: {target: upstream, name: vendor/token}}}
  - {name: vendor/c, targets: [local], value: {from: {target: upstream, name: vendor/token}}}
  - {name: app/key, targets: [local], value: {generate: {type: ed25519}}}
  - {name: app/key-pub, targets: [local], value: {public_key_of: app/key}}
  - {name: app/missing, targets: [local], value: {from: {target: upstream, name: vendor/none}}}
"""


def test_a_source_secret_is_read_once_per_run_and_a_missing_one_is_an_error(
        write_stack: Callable[..., Path], canary: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cloudsync")
    root = write_stack(STACK)
    LocalStore(root / ".cloudsync" / "upstream.db").put_value("vendor/token", SecretValue(canary))
    reads: list[str] = []
    real = LocalProvider.read_value
    monkeypatch.setattr(LocalProvider, "read_value", lambda self, name: reads.append(name) or real(self, name))
    stack = load_stack(root)
    with open_session(stack) as session:
        values, diags = resolve_values(session, stack.secrets)
    assert reads.count("vendor/token") == 1
    assert {n: v.reveal_text() for n, v in values.resolved.items() if n.startswith("vendor/")} == {
        "vendor/a": canary, "vendor/b": canary, "vendor/c": canary}
    # An undeclared source that does not exist is an error at the declaration...
    [problem] = diags
    assert problem.line == 12 and "cannot read upstream:vendor/none for secret 'app/missing'" in problem.message
    # ...while a public half whose key this stack has not written yet is left to the plan, which
    # derives it at apply from the key that apply writes (cloudsync/plan/derived.py).
    assert "app/key-pub" not in values.resolved
    assert "the value of app/key-pub is not readable yet from app/key" in caplog.text
    assert canary not in caplog.text + problem.render()

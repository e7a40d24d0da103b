"""Values derived from another secret of the stack follow it within one apply."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

from cloudsync.providers.local import LocalStore
from tests.conftest import CliResult, assert_no_canary, files_containing

STACK = """\
version: 1
stack: keys
targets:
  local: {provider: local}
  mirror: {provider: local, path: .cloudsync/mirror.db}
defaults:
  labels: {owner: team-keys}
  rotation: 30d
secrets:
  - name: deploy/signing-key
    targets: [local]
    value: {generate: {type: ed25519}}
  - name: deploy/signing-key-pub
    targets: [local]
    value: {public_key_of: deploy/signing-key}
  - name: app/token
    targets: [local]
    value: {env: APP_TOKEN}
  - name: app/token-copy
    targets: [mirror]
    value: {from: {target: local, name: app/token}}
"""


def _public(store: LocalStore) -> bytes:
    key = load_pem_private_key(store.get_value("deploy/signing-key").reveal(), None)
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _plan(cli: Callable[..., CliResult], stack: Path, env: dict[str, str]) -> list[tuple[str, str, str | None]]:
    result = cli("plan", "-C", str(stack), "--format", "json", env=env)
    assert result.code == 0, result.output
    return [(c["address"], c["action"], (c.get("value") or {}).get("mode"))
            for c in json.loads(result.stdout)["changes"]]


def test_dependents_are_written_in_the_same_apply_as_their_sources(
        cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str) -> None:
    stack = write_stack(STACK)
    env = {"APP_TOKEN": canary}
    assert _plan(cli, stack, env) == [
        ("local:app/token", "create", "source"),
        ("local:deploy/signing-key", "create", "generate"),
        ("local:deploy/signing-key-pub", "create", "derived"),
        ("mirror:app/token-copy", "create", "derived"),
    ]
    applied = cli("apply", "-C", str(stack), "--auto-approve", env=env)
    assert applied.code == 0, applied.output
    assert _plan(cli, stack, env) == []  # one apply was enough

    local, mirror = LocalStore(stack / ".cloudsync" / "local.db"), LocalStore(stack / ".cloudsync" / "mirror.db")
    assert local.get_value("deploy/signing-key-pub").reveal() == _public(local)
    assert mirror.get_value("app/token-copy").reveal_text() == canary

    # A change at the source: the value and its copy move together, in one apply.
    new_env = {"APP_TOKEN": canary + "-2"}
    assert _plan(cli, stack, new_env) == [("local:app/token", "update", "source"),
                                          ("mirror:app/token-copy", "update", "derived")]
    result = cli("apply", "-C", str(stack), "--auto-approve", env=new_env)
    assert result.code == 0 and _plan(cli, stack, new_env) == []
    assert mirror.get_value("app/token-copy").reveal_text() == canary + "-2"

    # New key settings regenerate the key; its public half follows in the same apply.
    (stack / "cloudsync.yaml").write_text(STACK.replace("{type: ed25519}", "{type: ecdsa}"))
    assert _plan(cli, stack, new_env) == [("local:deploy/signing-key", "update", "generate"),
                                          ("local:deploy/signing-key-pub", "update", "derived")]
    result = cli("apply", "-C", str(stack), "--auto-approve", env=new_env)
    assert result.code == 0 and _plan(cli, stack, new_env) == []
    assert local.get_value("deploy/signing-key-pub").reveal() == _public(local)
    assert_no_canary(canary, applied.output, result.output)
    assert files_containing(stack, canary) == []

"""A boolean key of a stack file takes YAML's true and false, never a string or a number.

Pydantic's lax mode would read ``"no"``, ``"off"``, ``"false"`` (quoted), ``1`` and ``0`` as
booleans: ``purge_on_delete: 1`` would purge, a quoted ``deletion_protection: "false"`` would
be obeyed without anyone noticing the quotes. Each is a diagnostic at the value, with a hint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.config.schema import stack_schema
from cloudsync.diagnostics import CloudsyncError, Diagnostic

STACK = """\
version: 1
stack: shop
targets:
  local: {{provider: local}}
  aws-prod: {{provider: aws, region: us-east-1, access_scan: {aws}}}
  gcp-prod: {{provider: gcp, project: acme-prod, inventory: {inventory}, access_scan: {gcp}}}
  azure-prod: {{provider: azure, vault_url: "https://acme.vault.azure.net", access_scan: {azure}}}
defaults:
  deletion_protection: {defaults}
policy: {{builtin: {builtin}}}
secrets:
  - name: shop/token
    targets: [local]
    value: {{generate: {{length: 20}}}}
    deletion_protection: {protect}
    purge_on_delete: {purge}
    adopt: {adopt}
"""
KEYS = ("aws", "inventory", "gcp", "azure", "defaults", "builtin", "protect", "purge", "adopt")
NAMES = {"aws": "access_scan", "inventory": "inventory", "gcp": "access_scan", "azure": "access_scan",
         "defaults": "deletion_protection", "builtin": "builtin", "protect": "deletion_protection",
         "purge": "purge_on_delete", "adopt": "adopt"}


def stack(write_stack: Callable[..., Path], **values: str) -> Path:
    return write_stack(STACK.format(**({k: "true" for k in KEYS} | values)))


def where(key: str) -> tuple[int, int]:
    """Line and column (1-based) where ``key``'s value starts in STACK."""
    text = STACK.format(**({k: "true" for k in KEYS} | {key: "@@"}))
    at = text.index("@@")
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def problems(folder: Path) -> list[Diagnostic]:
    with pytest.raises(CloudsyncError) as info:
        load_stack(folder)
    return info.value.diagnostics


def test_yaml_true_and_false_are_booleans(write_stack: Callable[..., Path]) -> None:
    loaded = load_stack(stack(write_stack, purge="false", adopt="False", builtin="FALSE", gcp="{ancestors: false}"))
    (token,) = loaded.secrets
    assert token.decl.deletion_protection is True and token.decl.purge_on_delete is False
    assert token.decl.adopt is False and loaded.config.policy.builtin is False


@pytest.mark.parametrize(("written", "hint"), [
    ('"yes"', "write true, without quotes: 'yes' is a string, not a boolean"),
    ('"off"', "write false, without quotes: 'off' is a string, not a boolean"),
    ('"false"', "write false, without quotes: 'false' is a string, not a boolean"),
    ("1", "write true: 1 is a number, not a boolean"),
    ("0", "write false: 0 is a number, not a boolean"),
    ("maybe", "write true or false"),
])
@pytest.mark.parametrize("key", KEYS)
def test_anything_else_is_a_diagnostic_at_the_value_with_a_hint(
        write_stack: Callable[..., Path], key: str, written: str, hint: str) -> None:
    (found,) = problems(stack(write_stack, **{key: written}))
    line, col = where(key)
    assert (Path(found.file or "").name, found.line, found.col) == ("cloudsync.yaml", line, col), found.render()
    assert found.message.startswith(f"{NAMES[key]}: expected true or false"), found.message
    assert found.hint == hint


def test_keys_that_also_take_a_list_or_mapping_say_so(write_stack: Callable[..., Path]) -> None:
    (found,) = problems(stack(write_stack, gcp="{ancestors: \"yes\"}"))
    assert found.message == "ancestors: expected true or false or a list of folders/N, organizations/N, got 'yes'"
    (found,) = problems(stack(write_stack, gcp="no_thanks"))
    assert found.message == "access_scan: expected true or false or {ancestors: ...}, got 'no_thanks'"
    assert found.hint == "write true or false"
    loaded = load_stack(stack(write_stack, gcp="{ancestors: [folders/123]}"))
    assert loaded.config.targets["gcp-prod"].access_scan.ancestors == ["folders/123"]  # type: ignore[union-attr]


def test_the_schema_still_says_boolean() -> None:
    defs = stack_schema()["definitions"]
    secret, scan = defs["SecretDecl"]["properties"], defs["GcpTarget"]["properties"]["access_scan"]
    assert secret["purge_on_delete"]["type"] == secret["adopt"]["type"] == "boolean"
    assert {"type": "boolean"} in scan["oneOf"]

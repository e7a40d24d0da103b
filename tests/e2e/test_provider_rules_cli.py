"""What the CLI makes of each provider's rules, before any cloud is contacted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult

STACK = """\
version: 1
stack: shop
targets:
  dev: {provider: local}
  azure-prod: {provider: azure, vault_url: "https://acme.vault.azure.net"}
secrets:
  - name: shop/db-password
    targets: [dev, azure-prod]
    description: DESCRIPTION
    value: {generate: {length: 32}}
"""


def test_validate_refuses_a_description_azure_cannot_store(cli: Callable[..., CliResult],
                                                            write_stack: Callable[..., Path]) -> None:
    folder = write_stack(STACK.replace("DESCRIPTION", "d" * 256))
    result = cli("validate", "-C", str(folder))
    assert result.code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"{folder}/cloudsync.yaml:9:18: error: the description has 256 characters, but Key Vault keeps at most 255 "
        "in a secret's contentType, where cloudsync stores it (target 'azure-prod') (hint: shorten the description; "
        "a longer note can stay in the file as a YAML comment)"]


def test_validate_accepts_a_description_of_255_characters_for_azure(cli: Callable[..., CliResult],
                                                                     write_stack: Callable[..., Path]) -> None:
    result = cli("validate", "-C", str(write_stack(STACK.replace("DESCRIPTION", "d" * 255))))
    assert result.code == 0, result.output


def test_permissions_of_a_provider_without_its_own_rendering_are_json(cli: Callable[..., CliResult],
                                                                       write_stack: Callable[..., Path]) -> None:
    folder = write_stack(STACK.replace("DESCRIPTION", "the database password"))
    result = cli("permissions", "-C", str(folder), "--target", "dev")
    assert result.code == 0, result.output
    assert json.loads(result.stdout) == {"target": "dev", "provider": "local", "permissions": {
        "plan-metadata": ["read the store file"],
        "plan": ["read the store file", "read the store key"],
        "apply": ["write the store file", "read the store key", "create the lock file"]}}

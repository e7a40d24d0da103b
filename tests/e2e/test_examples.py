"""The shipped examples stay valid and pass the built-in policies (they are what users copy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

EXAMPLES = sorted(p.parent for p in (Path(__file__).resolve().parents[2] / "examples").glob("*/cloudsync.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid_and_passes_the_built_in_policies(cli: Callable[..., CliResult], example: Path) -> None:
    validated = cli("validate", "-C", str(example))
    assert validated.code == 0, validated.output
    checked = cli("policy", "check", "-C", str(example))
    assert checked.code == 0, checked.output


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart", "sops"}

"""`rotation: {every, grace}`: how long a superseded version stays enabled, validated at load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.config.models import DEFAULT_GRACE, rotation_grace
from cloudsync.diagnostics import CloudsyncError

HEADER = """\
version: 1
stack: payments
targets:
  local: {provider: local}
secrets:
  - name: payments/token
    targets: [local]
    value: {generate: {length: 32}}
"""


@pytest.mark.parametrize(("rotation", "grace"), [
    ("30d", DEFAULT_GRACE),
    ("{every: 30d}", DEFAULT_GRACE),
    ("{every: 30d, grace: 12h}", timedelta(hours=12)),
    ("{every: 30d, grace: 0}", timedelta(0)),
    ("{every: 30d, grace: '0'}", timedelta(0)),
    ("{every: 30d, grace: 0d}", timedelta(0)),
])
def test_valid_graces(write_stack: Callable[..., Path], rotation: str, grace: timedelta) -> None:
    stack = load_stack(write_stack(HEADER + f"    rotation: {rotation}\n"))
    assert rotation_grace(stack.secrets[0].decl.rotation) == grace


@pytest.mark.parametrize(("rotation", "words"), [
    ("{every: 30d, grace: 30d}", "must be shorter than the rotation period"),
    ("{every: 1d, grace: 2d}", "must be shorter than the rotation period"),
    ("{every: 30d, by: external, grace: 1d}", "grace applies only to values cloudsync writes"),
    ("{every: 30d, grace: -1d}", "bad duration"),
    ("{every: 30d, grace: 1}", "string"),
    ("{every: 30d, grace: true}", "string"),
    ("{every: 30d, grace: soon}", "bad duration"),
])
def test_invalid_graces_point_at_the_line(write_stack: Callable[..., Path], rotation: str, words: str) -> None:
    with pytest.raises(CloudsyncError) as info:
        load_stack(write_stack(HEADER + f"    rotation: {rotation}\n"))
    (diag,) = info.value.diagnostics
    assert words in diag.message and diag.line == 9, diag.render()

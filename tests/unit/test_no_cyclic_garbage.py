"""Loading and planning a stack leave nothing for the cyclic garbage collector.

Load, plan and policy evaluation run with the collector paused (cloudsync/gc_pause.py):
that is only sound while they make no reference cycles, which would otherwise wait, with
everything they hold, for the next full collection.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.plan.build import build_plan, open_session, select_targets


def _stack(root: Path) -> Path:
    lines = ["version: 1", "stack: cycles", "targets:", "  local: {provider: local, path: .cloudsync/local.db}",
             "principals:", "  api: {}", "secrets:"]
    for i in range(40):
        lines += [f"  - name: app/s{i}", "    targets: [local]", "    value: {generate: {length: 24}}",
                  "    readers: [api]"]
    lines += ["  - name: app/copy", "    targets: [local]", "    value: {from: {name: app/s1, target: local}}"]
    (root / "cloudsync.yaml").write_text("\n".join(lines) + "\n")
    return root


def test_loading_and_planning_a_stack_makes_no_reference_cycles(tmp_path: Path) -> None:
    root = _stack(tmp_path)
    stack = load_stack(root)  # the first run imports modules, which make cycles of their own
    with open_session(stack) as session:
        build_plan(session, select_targets(stack, None))
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        stack = load_stack(root)
        with open_session(stack) as session:
            build_plan(session, select_targets(stack, None))
        del stack, session
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was_found(tmp_path: Path, enabled: bool) -> None:
    root = _stack(tmp_path)
    (gc.enable if enabled else gc.disable)()
    try:
        load_stack(root)
        assert gc.isenabled() is enabled
    finally:
        gc.enable()

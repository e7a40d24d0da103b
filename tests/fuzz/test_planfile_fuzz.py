"""Fuzzing the plan-file reader: whatever a file holds, a diagnostic or a plan — never a crash.

Inputs: random bytes, random JSON documents, and real plan bodies with one field replaced
by random JSON, each validly re-signed with the test key (so the body checks, not the
signature, are what is exercised), plus arbitrarily deep nesting. Every input goes through
what ``show`` and ``apply FILE`` do: read and verify, build the plan, check staleness.

Examples per test: ``CLOUDSYNC_FUZZ_EXAMPLES`` (default 100; the CLI test runs 1/50 of it).
``pytest tests/fuzz --hypothesis-show-statistics`` reports the cases tried. A long run:
``CLOUDSYNC_FUZZ_EXAMPLES=20000 pytest -n 2 tests/fuzz/test_planfile_fuzz.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import PlanRun, Values
from cloudsync.plan.model import Plan
from cloudsync.plan.planfile import plan_from_body, read_plan, stale_reasons
from tests.conftest import CLI
from tests.unit.test_planfile_keys import forge

EXAMPLES = int(os.environ.get("CLOUDSYNC_FUZZ_EXAMPLES", "100"))
KEY = "the fuzzing key, long enough to be accepted"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

STATE = {"name": "shop/db", "labels": {"owner": "team"}, "description": "d",
         "expires_at": "2027-02-27T15:26:23+00:00", "readers": ["api"], "protected": False, "purge_on_delete": False}
BODY: dict[str, Any] = {
    "kind": "cloudsync-plan", "file_format": 1, "stack": "shop", "created_at": "2026-11-29T15:26:23+00:00",
    "metadata_only": False, "targets": ["local"], "unchanged": 3,
    "changes": [
        {"address": "local:shop/db", "target": "local", "provider": "local", "secret": "shop/db",
         "remote_name": "shop/db", "action": "create", "reasons": ["value", "access"], "details": ["x"],
         "value": {"mode": "source", "fingerprint": None, "key_id": None, "spec": None, "copy_from": None,
                   "regenerate": False, "check": "f70d2f0788a4eec31e38e80255466106"},
         "file": "cloudsync.yaml", "line": 11, "after": STATE},
        {"address": "local:shop/old", "target": "local", "provider": "local", "secret": "shop/old",
         "remote_name": "shop/old", "action": "delete", "reasons": [], "details": [], "after": None},
    ],
    "revisions": {"local": {"shop/db": None, "shop/old": "2"}},
}

scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from(["create", "noop", "source", "local", "2026-11-29T15:26:23+00:00", "", "\x1b[2J"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


PATHS = [p for p in _paths(BODY) if p]


def _replace(body: dict[str, Any], path: tuple[str | int, ...], value: Any, delete: bool) -> dict[str, Any]:
    result = copy.deepcopy(body)
    node: Any = result
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


def _fresh() -> PlanRun:
    plan = Plan(stack="shop", changes=[], created_at=datetime.now(UTC), targets=["local"])
    return PlanRun(plan=plan, values=Values(), actual={}, desired=[])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("planfile-fuzz")


def check(folder: Path, data: bytes) -> None:
    """Read ``data`` as ``show`` and ``apply FILE`` do: a plan or diagnostics naming the file."""
    path = folder / "plan.json"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CLOUDSYNC_PLAN_KEY", KEY)
        env.delenv("CI", raising=False)
        try:
            body = read_plan(path, folder)
            plan_from_body(body)
            stale_reasons(body, _fresh(), folder)
        except CloudsyncError as exc:
            for diag in exc.diagnostics:
                assert diag.file == str(path), diag
                assert diag.render().isprintable(), diag.render()


@FUZZ
@given(data=st.binary(max_size=4096) | st.text(max_size=2000).map(str.encode))
def test_random_bytes(workdir: Path, data: bytes) -> None:
    check(workdir, data)


@FUZZ
@given(body=json_values)
def test_random_json_documents_signed_with_the_key(workdir: Path, body: Any) -> None:
    check(workdir, forge(body, KEY.encode()).encode())  # forge takes any JSON as the body
    check(workdir, json.dumps({"body": body, "signature": body}).encode())


# Cases this test found in the reader before bodies were validated (each crashed it).
@example(where=("revisions",), value=None, delete=True)  # KeyError
@example(where=("changes", 0, "after", "readers"), value=None, delete=True)  # KeyError
@example(where=("created_at",), value="0", delete=False)  # ValueError
@example(where=("unchanged",), value="", delete=False)  # ValueError
@example(where=("changes", 1, "reasons"), value=None, delete=False)  # TypeError
@example(where=("changes", 0, "after", "labels"), value=[[]], delete=False)  # TypeError: unhashable
@FUZZ
@given(where=st.sampled_from(PATHS), value=json_values, delete=st.booleans())
def test_real_bodies_with_one_field_replaced_and_resigned(workdir: Path, where: tuple[str | int, ...], value: Any,
                                                          delete: bool) -> None:
    check(workdir, forge(_replace(BODY, where, value, delete), KEY.encode()).encode())


CLOSERS = {"[": "]", '{"a":': "}", '{"body":': "}", '["\\"': "]", "[{}": "]"}


@example(depth=200_000, opener="[", closed=True)  # RecursionError before nesting was bounded
@FUZZ
@given(depth=st.integers(1, 300_000), opener=st.sampled_from(sorted(CLOSERS)), closed=st.booleans())
def test_any_depth_of_nesting(workdir: Path, depth: int, opener: str, closed: bool) -> None:
    check(workdir, (opener * depth + "1" + (CLOSERS[opener] * depth if closed else "")).encode())


@settings(FUZZ, max_examples=max(3, EXAMPLES // 50))
@given(where=st.sampled_from(PATHS), value=json_values)
def test_the_command_never_shows_a_traceback(workdir: Path, where: tuple[str | int, ...], value: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_") and k != "CI"}
    env["CLOUDSYNC_PLAN_KEY"] = KEY
    path = workdir / "cli-plan.json"
    path.write_text(forge(_replace(BODY, where, value, False), KEY.encode()))
    proc = subprocess.run([CLI, "show", str(path), "-C", str(workdir)], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode in (0, 1)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    if proc.returncode == 1:
        assert proc.stderr.startswith(f"{path}: error:"), proc.stderr

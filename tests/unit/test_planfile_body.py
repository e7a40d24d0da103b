"""A saved plan's body is checked against its model after the signature: a body re-signed by
a key holder (or by a bug) with wrong types, or nested without end, is a diagnostic naming
the file and the field — never a KeyError, TypeError, AttributeError or RecursionError."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan import planfile
from cloudsync.plan.build import PlanRun, build_plan, open_session
from cloudsync.plan.planfile import plan_from_body, read_plan, stale_reasons
from tests.unit.test_planfile_keys import GOOD_KEY, STACK, forge, save_plan


@pytest.fixture
def root(write_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, canary: str) -> Path:
    monkeypatch.setenv("SHOP_VALUE", canary)
    monkeypatch.delenv("CI", raising=False)
    return write_stack(STACK)


@pytest.fixture
def body(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return save_plan(root, tmp_path / "legit.json", monkeypatch)  # CLOUDSYNC_PLAN_KEY stays GOOD_KEY


@pytest.fixture
def fresh(root: Path, body: dict[str, Any]) -> PlanRun:
    stack = load_stack(root)
    with open_session(stack) as session:
        return build_plan(session, ["local"])


def use(path: Path, root: Path, fresh: PlanRun) -> None:
    """What `show` and `apply FILE` do with a plan file."""
    saved = read_plan(path, root)
    plan_from_body(saved)
    stale_reasons(saved, fresh, root)


def refused(path: Path, root: Path, fresh: PlanRun) -> str:
    with pytest.raises(CloudsyncError) as info:
        use(path, root, fresh)
    diags = info.value.diagnostics
    assert all(d.file == str(path) for d in diags), diags
    return "\n".join(d.render() for d in diags)


def mutate(body: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(body)
    *parents, last = where.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


DELETE = object()

WRONG = [
    ("changes", "x", "changes: input should be a valid array"),
    ("changes.0", {"address": 1}, "changes[0].address: input should be a valid string"),
    ("changes.0.action", "explode", "changes[0].action: input should be 'create', 'update'"),
    ("changes.0.after", [], "changes[0].after: input should be an object"),
    ("changes.0.after.labels", ["a"], "changes[0].after.labels: input should be an object"),
    ("changes.0.value", "x", "changes[0].value: input should be an object"),
    ("changes.0.reasons", None, "changes[0].reasons: input should be a valid array"),
    ("changes.0.target", "elsewhere", "changes[0]: target 'elsewhere' is not one of the plan's targets"),
    ("revisions", [], "revisions: input should be an object"),
    ("created_at", 5, "created_at: input should be a valid datetime"),
    ("stack", DELETE, "stack: field required"),
    ("unchanged", "many", "unchanged: input should be a valid integer"),
    ("metadata_only", "no", "metadata_only: input should be a valid boolean"),
    ("surprise", 1, "surprise: extra inputs are not permitted"),
]


@pytest.mark.parametrize(("where", "value", "expected"), WRONG, ids=[w[0] for w in WRONG])
def test_a_resigned_body_with_wrong_types_is_a_diagnostic(root: Path, body: dict[str, Any], fresh: PlanRun,
                                                          tmp_path: Path, where: str, value: Any,
                                                          expected: str) -> None:
    path = tmp_path / "resigned.json"
    path.write_text(forge(mutate(body, where, value), GOOD_KEY.encode()))
    text = refused(path, root, fresh)
    assert f"{path}: error: the plan's content is not valid (signed, but not a plan this cloudsync can apply)" in text
    assert expected in text


def test_a_legit_plan_still_reads(root: Path, body: dict[str, Any], fresh: PlanRun, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(forge(body, GOOD_KEY.encode()))
    use(path, root, fresh)
    plan = plan_from_body(read_plan(path, root))
    assert [c.address for c in plan.changes] == ["local:shop/db-password"]


@pytest.mark.parametrize("text", [
    "[" * 200_000 + "]" * 200_000,
    '{"body": ' * 200_000 + "1" + "}" * 200_000,
])
def test_a_deeply_nested_file_is_refused_before_parsing(root: Path, fresh: PlanRun, tmp_path: Path,
                                                         text: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    assert "nested more than 16 levels deep" in refused(path, root, fresh)


def test_a_signed_body_nested_too_deep_is_refused(root: Path, body: dict[str, Any], fresh: PlanRun,
                                                  tmp_path: Path) -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    path = tmp_path / "deep.json"
    path.write_text(forge(mutate(body, "changes.0.details", deep), GOOD_KEY.encode()))
    assert "nested more than 16 levels deep" in refused(path, root, fresh)


def test_a_plan_file_larger_than_the_bound_is_refused_unread(root: Path, body: dict[str, Any], fresh: PlanRun,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "plan.json"
    path.write_text(forge(body, GOOD_KEY.encode()))
    monkeypatch.setattr(planfile, "MAX_PLAN_BYTES", path.stat().st_size - 1)
    text = refused(path, root, fresh)
    assert f"is larger than {path.stat().st_size - 1} bytes" in text


@pytest.mark.parametrize("text", [
    '{"body": [], "signature": {}}',
    '{"body": {"kind": "cloudsync-plan", "file_format": 1}, "signature": []}',
    '{"body": {"kind": "cloudsync-plan", "file_format": 1}, "signature": {"key_id": ["x"], "value": 1}}',
    '"just a string"',
    "\xff\xfe not utf-8",
    "",
])
def test_a_malformed_envelope_is_a_diagnostic(root: Path, fresh: PlanRun, tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(text.encode("latin-1"))
    text = refused(path, root, fresh)
    assert text.startswith(str(path)) and "error: not a cloudsync plan file" in text


def test_field_names_from_the_file_are_shown_safely(root: Path, body: dict[str, Any], fresh: PlanRun,
                                                    tmp_path: Path) -> None:
    hostile = "\x1b[2J\x1b[HNo changes.\n" + "z" * 500
    path = tmp_path / "plan.json"
    path.write_text(forge({**body, hostile: 1}, GOOD_KEY.encode()))
    text = refused(path, root, fresh)
    assert "\x1b" not in text and "\nNo changes." not in text and "z" * 100 not in text


def test_a_plan_file_that_is_not_json_names_the_cause(root: Path, fresh: PlanRun, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('{"body": {"kind": "cloudsync-plan",\n "file_format": 1,, }}')
    text = refused(path, root, fresh)
    assert text.startswith(f"{path}:2:19: error: not a cloudsync plan file: not valid JSON (")


"""The plan key: never empty or short, a private key file, and always named.

``forge`` signs a plan body the way an attacker who guessed (or emptied) the key would,
written independently of cloudsync's own signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError
from cloudsync.plan.build import build_plan, open_session
from cloudsync.plan.planfile import plan_from_body, read_plan, write_plan

STACK = """\
version: 1
stack: shop
targets:
  local: {provider: local}
secrets:
  - name: shop/db-password
    targets: [local]
    value: {env: SHOP_VALUE}
"""
GOOD_KEY = "a plan key that is long enough to sign with"


def forge(body: dict[str, Any], key: bytes) -> str:
    """A plan file holding ``body``, signed with ``key`` as cloudsync's format defines it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return json.dumps({"body": body, "signature": {
        "alg": "hmac-sha256",
        "key_id": hmac.new(key, b"cloudsync plan key id", hashlib.sha256).hexdigest()[:12],
        "value": hmac.new(key, canonical, hashlib.sha256).hexdigest()}})


def save_plan(root: Path, out: Path, monkeypatch: pytest.MonkeyPatch, key: str = GOOD_KEY) -> dict[str, Any]:
    """Plan ``root`` and save it under ``key``; return the saved body."""
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", key)
    stack = load_stack(root)
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
    write_plan(run, out, root)
    body: dict[str, Any] = json.loads(out.read_text())["body"]
    return body


@pytest.fixture
def stack_root(write_stack: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, canary: str) -> Path:
    monkeypatch.setenv("SHOP_VALUE", canary)
    monkeypatch.delenv("CI", raising=False)  # the CI rule has tests of its own
    return write_stack(STACK)


@pytest.fixture
def body(stack_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    saved = save_plan(stack_root, tmp_path / "legit.json", monkeypatch)
    monkeypatch.delenv("CLOUDSYNC_PLAN_KEY")
    return saved


def key_file(root: Path, content: bytes, mode: int = 0o600) -> Path:
    path = root / ".cloudsync" / "plan.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)
    return path


def refusal(path: Path, root: Path) -> str:
    with pytest.raises(CloudsyncError) as info:
        plan_from_body(read_plan(path, root))
    return "\n".join(d.render() for d in info.value.diagnostics)


def test_a_plan_forged_with_an_empty_key_file_is_refused(stack_root: Path, body: dict[str, Any],
                                                           tmp_path: Path) -> None:
    key_path = key_file(stack_root, b"")
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, b""))
    text = refusal(forged, stack_root)
    assert str(key_path) in text and "holds no key" in text


def test_an_empty_env_key_does_not_make_an_empty_key_file_usable(
        stack_root: Path, body: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file(stack_root, b"\n")
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", "")
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, b""))
    assert "holds no key" in refusal(forged, stack_root)


@pytest.mark.parametrize("length", [1, 16, 31])
def test_an_env_key_shorter_than_32_characters_is_refused(
        stack_root: Path, body: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int) -> None:
    short = "§" * length
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, short.encode()))
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", short)
    text = refusal(forged, stack_root)
    assert "CLOUDSYNC_PLAN_KEY is too short" in text and "at least 32 characters" in text
    assert short not in text.replace("CLOUDSYNC_PLAN_KEY", "")  # the key itself is never shown


def test_a_32_character_env_key_signs_and_verifies(stack_root: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "plan.json"
    save_plan(stack_root, out, monkeypatch, key="k" * 32)
    assert plan_from_body(read_plan(out, stack_root)).stack == "shop"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_plan_key_file_readable_by_others_is_refused(stack_root: Path, body: dict[str, Any], tmp_path: Path,
                                                        mode: int) -> None:
    key = os.urandom(32)
    key_path = key_file(stack_root, base64.urlsafe_b64encode(key) + b"\n", mode)
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, key))
    text = refusal(forged, stack_root)
    assert f"{key_path} is readable by other users (mode {mode:o})" in text and f"chmod 600 {key_path}" in text


@pytest.mark.parametrize("content", [b"not a key at all!!\n", b"c2hvcnQ=\n", b"\xff\xfe\x00garbage"])
def test_a_garbage_plan_key_file_is_a_diagnostic(stack_root: Path, body: dict[str, Any], tmp_path: Path,
                                                 content: bytes) -> None:
    key_path = key_file(stack_root, content)
    plan = tmp_path / "plan.json"
    plan.write_text(forge(body, b"whatever"))
    text = refusal(plan, stack_root)
    assert str(key_path) in text and "holds no key" in text


def test_a_plan_key_file_that_is_not_a_regular_file_is_refused(stack_root: Path, body: dict[str, Any],
                                                                tmp_path: Path) -> None:
    # git stores symlinks: a stack may carry .cloudsync/plan.key -> /dev/null (an empty key)
    key_path = stack_root / ".cloudsync" / "plan.key"
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.symlink_to("/dev/null")
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, b""))
    assert f"{key_path} is not a regular file" in refusal(forged, stack_root)


def test_verifying_never_creates_a_key_file(stack_root: Path, body: dict[str, Any], tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(forge(body, GOOD_KEY.encode()))
    text = refusal(plan, stack_root)
    assert "no plan key" in text and "CLOUDSYNC_PLAN_KEY is not set" in text
    assert not (stack_root / ".cloudsync" / "plan.key").exists()


def test_a_signature_failure_names_the_key_that_was_tried(stack_root: Path, body: dict[str, Any],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(forge(body, b"the key of some other plan job, long enough"))
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", GOOD_KEY)
    text = refusal(plan, stack_root)
    assert "signed by an unknown key" in text and "checked with CLOUDSYNC_PLAN_KEY" in text
    assert text.startswith(f"{plan}: error:")

    monkeypatch.delenv("CLOUDSYNC_PLAN_KEY")
    write = load_stack(stack_root)
    with open_session(write) as session:
        source = write_plan(build_plan(session, ["local"]), tmp_path / "local.json", stack_root)
    key_path = stack_root / ".cloudsync" / "plan.key"
    assert source == f"the key file {key_path}"
    assert f"checked with the key file {key_path}" in refusal(plan, stack_root)


def test_write_plan_says_which_key_signed(stack_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", GOOD_KEY)
    stack = load_stack(stack_root)
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
    assert write_plan(run, tmp_path / "p.json", stack_root) == "CLOUDSYNC_PLAN_KEY"
    assert not (stack_root / ".cloudsync" / "plan.key").exists()


def test_a_new_plan_key_file_is_private_and_holds_32_random_bytes(
        stack_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = load_stack(stack_root)
    with open_session(stack) as session:
        run = build_plan(session, ["local"])
    write_plan(run, tmp_path / "p.json", stack_root)
    key_path = stack_root / ".cloudsync" / "plan.key"
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert len(base64.urlsafe_b64decode(key_path.read_bytes().strip())) == 32
    assert plan_from_body(read_plan(tmp_path / "p.json", stack_root)).stack == "shop"


def plan_run(root: Path, *, metadata_only: bool = False) -> Any:
    stack = load_stack(root)
    with open_session(stack) as session:
        return build_plan(session, ["local"], metadata_only=metadata_only)


@pytest.mark.parametrize("env_key", [None, ""])
def test_in_ci_a_saved_plan_needs_the_env_key(stack_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              env_key: str | None) -> None:
    monkeypatch.setenv("CI", "true")
    if env_key is not None:
        monkeypatch.setenv("CLOUDSYNC_PLAN_KEY", env_key)
    out = tmp_path / "plan.json"
    with pytest.raises(CloudsyncError) as info:
        write_plan(plan_run(stack_root), out, stack_root)
    text = info.value.diagnostics[0].render()
    assert ("CLOUDSYNC_PLAN_KEY is empty" if env_key == "" else "CLOUDSYNC_PLAN_KEY is not set") in text
    assert "CI=true" in text and "the same secret in the plan and the apply jobs" in text
    assert not out.exists() and not (stack_root / ".cloudsync" / "plan.key").exists()


def test_in_ci_a_metadata_only_plan_may_use_the_key_file(stack_root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A fork's pull request gets no secrets; its plan can never be applied, only shown.
    monkeypatch.setenv("CI", "true")
    source = write_plan(plan_run(stack_root, metadata_only=True), tmp_path / "plan.json", stack_root)
    assert source == f"the key file {stack_root / '.cloudsync' / 'plan.key'}"


def test_in_ci_a_plan_key_file_in_the_checkout_is_not_trusted(stack_root: Path, body: dict[str, Any],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    key_file(stack_root, base64.urlsafe_b64encode(key))
    plan = tmp_path / "plan.json"
    plan.write_text(forge(body, key))
    monkeypatch.setenv("CI", "true")
    text = refusal(plan, stack_root)
    assert "CLOUDSYNC_PLAN_KEY is not set" in text and "CI=true" in text
    monkeypatch.setenv("CI", "false")
    assert plan_from_body(read_plan(plan, stack_root)).stack == "shop"

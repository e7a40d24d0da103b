"""Keys and saved plans through the installed command: forged plans, CI, short keys, store keys."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.providers.local import LocalStore
from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.e2e.test_local_cli import STACK
from tests.unit.test_planfile_keys import forge

KEY = {"CLOUDSYNC_PLAN_KEY": "a plan key shared by the plan and apply jobs"}
NOT_CI = {"CI": ""}  # the suite itself may run with CI=true


@pytest.fixture
def stack(write_stack: Callable[..., Path]) -> Path:
    return write_stack(STACK)


@pytest.fixture
def run(cli: Callable[..., CliResult], stack: Path, canary: str) -> Callable[..., CliResult]:
    def go(*args: str, env: dict[str, str] | None = None, folder: Path | None = None) -> CliResult:
        result = cli(*args, "-C", str(folder or stack), env={"SHOP_DB_PASSWORD": canary, **NOT_CI, **(env or {})})
        assert_no_canary(canary, result.stdout, result.stderr)
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        return result

    return go


def store(stack: Path) -> LocalStore:
    return LocalStore(stack / ".cloudsync" / "local.db")


def delete_plan(run: Callable[..., CliResult], stack: Path, out: Path) -> dict[str, object]:
    """A real plan (signed with KEY) that deletes shop/session-key; its body."""
    assert run("apply", "--auto-approve").code == 0
    (stack / "cloudsync.yaml").write_text(STACK.split("  - name: shop/session-key")[0])
    assert run("plan", "--out", str(out), env=KEY).code == 0
    body: dict[str, object] = json.loads(out.read_text())["body"]
    assert [c["action"] for c in body["changes"]] == ["delete"]  # type: ignore[index]
    return body


@pytest.mark.parametrize("env", [{}, {"CLOUDSYNC_PLAN_KEY": ""}], ids=["unset", "empty"])
def test_a_plan_forged_with_an_empty_key_is_never_applied(run: Callable[..., CliResult], stack: Path,
                                                           tmp_path: Path, env: dict[str, str]) -> None:
    body = delete_plan(run, stack, tmp_path / "legit.json")
    key_file = stack / ".cloudsync" / "plan.key"
    key_file.write_bytes(b"")
    key_file.chmod(0o600)
    forged = tmp_path / "forged.json"
    forged.write_text(forge(body, b""))

    result = run("apply", str(forged), env=env)
    assert result.code == 1
    assert f"{forged}: error: cannot check the plan's signature: the key file {key_file} holds no key" in result.stderr
    assert "shop/session-key" in {row["name"] for row in store(stack).rows() if row["deleted_at"] is None}


def test_a_plan_signed_by_a_key_file_names_it_and_fails_clearly_elsewhere(
        run: Callable[..., CliResult], stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    saved = run("plan", "--out", str(out))
    key_file = stack / ".cloudsync" / "plan.key"
    assert saved.code == 0
    assert f"Saved the plan to {out}, signed with the key file {key_file};" in saved.stderr
    assert "hint: only a machine with this key file can apply the plan; to apply it elsewhere, set " \
           "CLOUDSYNC_PLAN_KEY" in saved.stderr

    other = tmp_path / "other-machine"
    shutil.copytree(stack, other, ignore=shutil.ignore_patterns("plan.key"))
    elsewhere = run("apply", str(out), folder=other)
    assert elsewhere.code == 1
    assert (f"cannot check the plan's signature: no plan key: CLOUDSYNC_PLAN_KEY is not set and "
            f"{other / '.cloudsync' / 'plan.key'} does not exist") in elsewhere.stderr
    assert not (other / ".cloudsync" / "plan.key").exists()

    with_env = run("apply", str(out), env=KEY)
    assert with_env.code == 1
    assert "signed by an unknown key (checked with CLOUDSYNC_PLAN_KEY)" in with_env.stderr
    assert "it was signed with a .cloudsync/plan.key file on the machine that made it" in with_env.stderr

    assert run("apply", str(out)).code == 0  # where the key file is, it applies


def test_in_ci_plan_out_needs_the_env_key(run: Callable[..., CliResult], stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    refused = run("plan", "--out", str(out), env={"CI": "true"})
    assert refused.code == 1
    assert (f"{out}: error: the plan was not saved: CLOUDSYNC_PLAN_KEY is not set and CI=true: in CI, saved plans "
            "are signed and checked only with CLOUDSYNC_PLAN_KEY") in refused.stderr
    assert "hint: set CLOUDSYNC_PLAN_KEY to the same secret in the plan and the apply jobs" in refused.stderr
    assert not out.exists() and not (stack / ".cloudsync" / "plan.key").exists()

    saved = run("plan", "--out", str(out), env={"CI": "true", **KEY})
    assert saved.code == 0 and "signed with CLOUDSYNC_PLAN_KEY;" in saved.stderr
    assert "hint:" not in saved.stderr
    assert run("apply", str(out), env={"CI": "true", **KEY}).code == 0

    fork = run("plan", "--metadata-only", "--out", str(tmp_path / "fork.json"), env={"CI": "true"})
    assert fork.code == 0, fork.stderr  # a fork's pull request has no secrets; its plan is never applied


def test_a_resigned_plan_with_wrong_types_is_a_diagnostic(run: Callable[..., CliResult], stack: Path,
                                                          tmp_path: Path) -> None:
    body = delete_plan(run, stack, tmp_path / "legit.json")
    body["changes"][0]["after"] = ["not", "a", "state"]  # type: ignore[index]
    body["revisions"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(forge(body, KEY["CLOUDSYNC_PLAN_KEY"].encode()))
    for command in ("show", "apply"):
        result = run(command, str(bad), env=KEY)
        assert result.code == 1
        assert f"{bad}: error: the plan's content is not valid" in result.stderr
        assert "changes[0].after: input should be an object" in result.stderr and "revisions:" in result.stderr


def test_a_deeply_nested_plan_file_is_a_diagnostic(run: Callable[..., CliResult], tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    result = run("show", str(deep), env=KEY)
    assert result.code == 1 and "nested more than 16 levels deep" in result.stderr


@pytest.mark.parametrize("name", ["CLOUDSYNC_FINGERPRINT_KEY", "CLOUDSYNC_LOCAL_KEY", "CLOUDSYNC_PLAN_KEY"])
@pytest.mark.parametrize("length", [8, 31])
def test_every_key_variable_needs_32_characters(run: Callable[..., CliResult], tmp_path: Path,
                                                name: str, length: int) -> None:
    key = "§" * length
    result = run("plan", "--out", str(tmp_path / "plan.json"), env={**KEY, name: key})
    assert result.code == 1
    assert f"{name} is too short: a key needs at least 32 characters" in result.stderr
    assert "openssl rand -base64 32" in result.stderr and key not in result.output
    assert not (tmp_path / "plan.json").exists()


def test_a_32_character_key_in_every_variable_works(run: Callable[..., CliResult], stack: Path, canary: str,
                                                    tmp_path: Path) -> None:
    env = {name: "k" * 32 for name in ("CLOUDSYNC_FINGERPRINT_KEY", "CLOUDSYNC_LOCAL_KEY", "CLOUDSYNC_PLAN_KEY")}
    assert run("plan", "--out", str(tmp_path / "plan.json"), env=env).code == 0
    assert run("apply", str(tmp_path / "plan.json"), env=env).code == 0
    assert files_containing(tmp_path, canary) == []


def test_local_store_key_problems_are_diagnostics(run: Callable[..., CliResult], stack: Path) -> None:
    assert run("apply", "--auto-approve").code == 0
    key_file = stack / ".cloudsync" / "local.db.key"
    key_file.write_text("garbage\n")
    garbage = run("plan")
    assert garbage.code == 1 and f"the key file {key_file} holds no key" in garbage.stderr

    key_file.unlink()
    missing = run("plan")
    assert missing.code == 1
    assert f"the key of the local store {stack / '.cloudsync' / 'local.db'} is missing" in missing.stderr
    assert not key_file.exists()

    (stack / ".cloudsync" / "local.db").write_bytes(b"not a database at all " * 50)
    damaged = run("plan", "--metadata-only")
    assert damaged.code == 1 and "is damaged or not a cloudsync store" in damaged.stderr
    assert "permissions" not in damaged.stderr

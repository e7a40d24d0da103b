"""The built-in pack: every policy's cases pass with exact violation sets, and every policy
has documentation and both a passing and a failing case (Checkov's lesson)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloudsync.policy import builtin_dir
from cloudsync.policy.loader import load_policies
from cloudsync.policy.testing import find_test_files, run_policy_tests

PACK = builtin_dir()
CASE_FILES = find_test_files([PACK / "tests"])


def _cases() -> list[tuple[Path, dict]]:  # type: ignore[type-arg]
    found = []
    for path in CASE_FILES:
        data = yaml.safe_load(path.read_text())
        for case in data["tests"]:
            found.append((path, {**case, "policies": case.get("policies") or data.get("policies")}))
    return found


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_case_file_passes_with_exact_sets(path: Path) -> None:
    run = run_policy_tests([path])
    failures = [(r.name, r.missing, r.unexpected, r.waived_missing, r.waived_unexpected, r.error)
                for r in run.results if not r.passed]
    assert failures == []
    assert run.results, "a case file without cases"


def test_every_builtin_policy_has_docs_and_passing_and_failing_cases() -> None:
    policies = load_policies([PACK]).policies
    assert sorted(policies) == [f"CS{n:03d}" for n in range(1, 17)]
    failing: set[str] = set()
    passing: set[str] = set()
    for _, case in _cases():
        named = set(case["policies"] or [])
        expected = {e["policy"] for e in case.get("expect", [])}
        failing |= expected
        if "expect_error" not in case:
            passing |= named - expected
    for pid, compiled in policies.items():
        policy = compiled.policy
        assert policy.builtin and policy.title and policy.rationale and policy.fix, pid
        assert pid in failing, f"{pid} has no failing case"
        assert pid in passing, f"{pid} has no passing case"


def test_pack_ids_are_stable() -> None:
    """Ids are a contract (waivers, SARIF history): renumbering breaks users."""
    titles = {pid: c.policy.title for pid, c in load_policies([PACK]).policies.items()}
    assert titles["CS001"] == "No wildcard or public readers"
    assert titles["CS004"] == "Prod secrets only in prod targets"
    assert titles["CS006"] == "Rotation period of at most 90 days"


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The runner compares exact sets: a missing and an unexpected violation both fail."""
    (tmp_path / "t.yaml").write_text(
        "policies: [CS006, CS008]\n"
        "tests:\n"
        "  - name: wrong\n"
        "    input: {secret: {name: app/key, rotation_days: 400, labels: {owner: a}}}\n"
        "    expect: [{policy: CS008, address: 'local:app/key'}]\n")
    run = run_policy_tests([tmp_path / "t.yaml"])
    (result,) = run.results
    assert not result.passed
    assert result.missing == [("CS008", "local:app/key")]
    assert result.unexpected == [("CS006", "local:app/key")]

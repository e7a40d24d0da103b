"""Policy test cases: input documents are completed and validated; errors point at the case."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.policy.testing import complete_document, run_policy_tests


def test_documents_derive_environments_and_resolved_readers() -> None:
    doc = complete_document({"secret": {"readers": ["api-prod"], "labels": {"env": "prod"}},
                             "principals": {"api-prod": {"gcp": "serviceAccount:a"}},
                             "target": {"name": "gcp-production", "provider": "gcp"}}, "t.yaml", 3)
    assert doc["secret"]["env"] == "prod" and doc["target"]["env"] == "prod"
    assert doc["principals"]["api-prod"]["env"] == "prod"
    assert doc["secret"]["readers_resolved"]["gcp"] == ["serviceAccount:a"]
    assert doc["secret"]["readers_resolved"]["local"] == ["api-prod"]
    assert (doc["secret"]["file"], doc["secret"]["line"]) == ("t.yaml", 3)


def _run(tmp_path: Path, text: str) -> list[str | None]:
    (tmp_path / "t.yaml").write_text(text)
    return [r.error for r in run_policy_tests([tmp_path / "t.yaml"]).results]


def test_unknown_keys_in_a_document_fail_the_case(tmp_path: Path) -> None:
    (error,) = _run(tmp_path, "tests:\n  - {name: x, input: {secret: {nmae: a}}, expect: []}\n")
    assert error is not None and "t.yaml:2: error: input.secret.nmae: unknown key 'nmae'" in error


def test_expect_error_passes_only_with_that_error(tmp_path: Path) -> None:
    errors = _run(tmp_path, (
        "tests:\n"
        "  - name: bad stack\n"
        "    stack: |\n      version: 1\n      stack: t\n      targets: {local: {provider: local}}\n"
        "      policy: {disabled: [CS999]}\n"
        "    expect_error: unknown policy 'CS999'\n"
        "  - name: wrong error text\n"
        "    stack: |\n      version: 1\n      stack: t\n      targets: {local: {provider: local}}\n"
        "      policy: {disabled: [CS999]}\n"
        "    expect_error: something else\n"))
    assert errors[0] is None
    assert errors[1] is not None and "expected an error containing 'something else'" in errors[1]


def test_cases_naming_unknown_policies_fail(tmp_path: Path) -> None:
    (error,) = _run(tmp_path, "tests:\n  - {name: x, policies: [NOPE], input: {secret: {}}, expect: []}\n")
    assert error is not None and "unknown policy 'NOPE'" in error


def test_case_files_are_validated_with_positions(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("tests:\n  - {name: x, input: {}, expect: [{policy: CS001}]}\n")
    with pytest.raises(CloudsyncError) as info:
        run_policy_tests([tmp_path / "t.yaml"])
    assert [(d.line, d.message) for d in info.value.diagnostics] == [(2, "missing required key 'address'")]

"""Output formats: text, json (the DESIGN keys), SARIF 2.1.0 for code scanning, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cloudsync.policy import PolicyReport
from cloudsync.policy.junit import render_report_junit, render_tests_junit
from cloudsync.policy.render import render_json, render_test_text, render_text
from cloudsync.policy.sarif import render_sarif
from cloudsync.policy.testing import run_policy_tests

from .helpers import check, stack_with

SECRETS = """\
- {name: app/public, targets: [gcp-prod], readers: [everyone]}
- {name: App_Name, targets: [local]}
- {name: legacy/slow, targets: [local], rotation: 400d}
"""
WAIVER = "waivers:\n  - {policy: CS006, secrets: [legacy/*], reason: SEC-1, expires: 2030-01-01}\n"


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PolicyReport:
    monkeypatch.chdir(tmp_path)  # paths are shown relative to the working directory
    stack = stack_with(Path("stack"), SECRETS, extra={"policies/w.yaml": WAIVER})
    return check(stack)


def test_text(report: PolicyReport) -> None:
    lines = render_text(report).splitlines()
    assert lines[0] == ("stack/cloudsync.yaml:16: error CS001 (No wildcard or public readers): "
                        "gcp-prod:app/public grants read to a wildcard or public principal")
    assert lines[1].startswith("stack/cloudsync.yaml:17: warning CS009 (Secret names follow the naming pattern)")
    assert lines[2] == "stack/cloudsync.yaml:18: waived CS006 at local:legacy/slow until 2030-01-01: SEC-1"
    assert lines[3] == "Policy check FAILED: 1 error, 1 warning, 1 waived (16 policies over 3 addresses)."


def test_json_has_the_contract_keys(report: PolicyReport) -> None:
    data = json.loads(render_json(report))
    assert set(data) == {"format_version", "violations", "waived", "diagnostics"}
    assert data["format_version"] == 1
    first = data["violations"][0]
    assert {k: first[k] for k in ("policy", "severity", "address", "message", "file", "line")} == {
        "policy": "CS001", "severity": "error", "address": "gcp-prod:app/public",
        "message": "gcp-prod:app/public grants read to a wildcard or public principal",
        "file": "stack/cloudsync.yaml", "line": 16}
    assert data["waived"][0]["waiver"]["reason"] == "SEC-1"


def test_sarif_is_what_code_scanning_accepts(report: PolicyReport) -> None:
    data = json.loads(render_sarif(report))
    assert data["version"] == "2.1.0" and data["$schema"].endswith("sarif-2.1.0.json")
    (run,) = data["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "cloudsync"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [f"CS{n:03d}" for n in range(1, 17)]  # every rule, so fixed alerts close
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning"}
        assert float(rule["properties"]["security-severity"]) > 0
        assert rule["name"].isalnum()
    results = run["results"]
    assert len(results) == 2  # the waived violation is not uploaded
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {"error", "warning"} and result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "stack/cloudsync.yaml"  # relative, forward slashes
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert isinstance(physical["region"]["startLine"], int) and physical["region"]["startLine"] >= 1
        assert result["partialFingerprints"]
    assert results[0]["ruleId"] == "CS001" and results[0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 16}
    assert run["invocations"][0]["executionSuccessful"] is True


def test_junit_parses_back(report: PolicyReport) -> None:
    root = ET.fromstring(render_report_junit(report))
    suite = root.find("testsuite")
    # a warning is not a failure: CI shows it as skipped, with a message
    assert suite is not None and suite.get("tests") == "16" and suite.get("failures") == "1"
    assert suite.get("skipped") == "1" and root.get("failures") == "1"
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    failure = cases["CS001"].find("failure")
    assert failure is not None and "gcp-prod:app/public" in (failure.text or "")
    warned = cases["CS009"].find("skipped")
    assert cases["CS009"].find("failure") is None and warned is not None
    assert warned.get("message") == "1 warning of CS009 (not blocking)" and "warning" in (warned.text or "")
    assert cases["CS003"].find("failure") is None
    waived_out = cases["CS006"].find("system-out")
    assert cases["CS006"].find("failure") is None and waived_out is not None and "waived" in (waived_out.text or "")


def test_policy_test_reports(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "policies: [CS008]\n"
        "tests:\n"
        "  - {name: good, input: {secret: {labels: {owner: a}}}, expect: []}\n"
        "  - {name: bad, input: {secret: {labels: {}}}, expect: []}\n")
    run = run_policy_tests([tmp_path / "t.yaml"])
    text = render_test_text(run, verbose=True)
    assert "PASS " in text and "FAIL " in text and "unexpected violation CS008 local:app/secret" in text
    assert text.splitlines()[-1] == "PASS: 1/2  FAIL: 1/2"
    root = ET.fromstring(render_tests_junit(run))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["bad"] and failed[0].get("line") == "4"


def test_sarif_uris_are_relative_to_the_working_directory(report: PolicyReport, tmp_path: Path) -> None:
    from dataclasses import replace

    report.violations = [replace(v, file=str(tmp_path / "stack" / "cloudsync.yaml")) for v in report.violations]
    report.violations.append(replace(report.violations[0], file="/elsewhere/cloudsync.yaml"))
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]
            for r in json.loads(render_sarif(report))["runs"][0]["results"]]
    assert uris[0] == {"uri": "stack/cloudsync.yaml", "uriBaseId": "%SRCROOT%"}
    assert uris[-1] == {"uri": "file:///elsewhere/cloudsync.yaml"}


def test_no_value_reaches_any_policy_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary: str) -> None:
    """A plan run holds resolved values in memory; nothing of them reaches documents or reports."""
    from cloudsync.plan.build import build_plan, open_session, select_targets
    from cloudsync.policy import evaluate

    from ..conftest import assert_no_canary

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POLICY_CANARY", canary)
    stack = stack_with(Path("stack"), "- {name: app/x, targets: [local], value: {env: POLICY_CANARY}, rotation: 999d}\n")
    with open_session(stack) as session:
        run = build_plan(session, select_targets(stack, ["local"]))
    assert [v.reveal_text() for v in run.values.resolved.values()] == [canary]  # the run does hold it
    report = evaluate(stack, run)
    assert ("CS006", "local:app/x") in {(v.policy, v.address) for v in report.violations}
    rendered = [render_text(report), render_json(report), render_sarif(report), render_report_junit(report)]
    assert_no_canary(canary, *rendered, repr(report))

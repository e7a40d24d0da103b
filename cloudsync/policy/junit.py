"""JUnit XML: for `policy check`, one test case per enabled policy; for `policy test`, per case.

CI systems show a JUnit failure per policy with every violating address in its text,
which stays readable for large estates where a case per address would not. Only
violations of severity ``error`` fail a case: a policy with warnings alone is reported as
``<skipped message="...">`` (CI shows it, and does not count it as a failure), the way
``policy check`` exits 0 on warnings. Names and messages go through ``safe_text``: XML 1.0
cannot even hold most control characters, and CI systems show these texts as they are.

`policy test` names each file by a stable name (``builtin/CS014``, or its path relative to
the stack folder), never by an absolute path that differs from machine to machine.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from cloudsync.policy.model import PolicyReport, Violation
from cloudsync.policy.testing import CaseResult, PolicyTestRun
from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text


def _suite(name: str, tests: int, failures: int, skipped: int = 0, seconds: float = 0.0) -> ET.Element:
    return ET.Element("testsuite", {"name": name, "tests": str(tests), "failures": str(failures),
                                    "errors": "0", "skipped": str(skipped), "time": f"{seconds:.3f}"})


def _line(v: Violation) -> str:
    where = f"{safe_text(v.file, NAME_LIMIT)}:{v.line}" if v.file else "-"
    return f"{where}: {v.severity}: {safe_text(v.address, NAME_LIMIT)}: {safe_text(v.message, TEXT_LIMIT)}"


def render_report_junit(report: PolicyReport) -> str:
    by_policy: dict[str, list[Violation]] = defaultdict(list)
    waived: dict[str, list[Violation]] = defaultdict(list)
    for v in report.violations:
        by_policy[v.policy].append(v)
    for v in report.waived:
        waived[v.policy].append(v)
    failing = [p for p in report.policies if any(v.severity == "error" for v in by_policy.get(p.id, ()))]
    warned = [p for p in report.policies if p.id in by_policy and p not in failing]
    suite = _suite("cloudsync policy check", len(report.policies), len(failing), skipped=len(warned))
    for policy in report.policies:
        case = ET.SubElement(suite, "testcase", {"classname": f"cloudsync.policy.{policy.id}",
                                                 "name": f"{policy.id} {safe_text(policy.title, 200)}"})
        found = by_policy.get(policy.id, [])
        if policy in failing:
            failure = ET.SubElement(case, "failure", {
                "type": policy.severity,
                "message": f"{len(found)} violation{'s' * (len(found) != 1)} of {policy.id}"})
            failure.text = "\n".join(_line(v) for v in found)
        elif found:  # warnings only: visible, not a failure
            skipped = ET.SubElement(case, "skipped", {
                "message": f"{len(found)} warning{'s' * (len(found) != 1)} of {policy.id} (not blocking)"})
            skipped.text = "\n".join(_line(v) for v in found)
        if waived.get(policy.id):
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"waived until {v.waiver.expires.isoformat() if v.waiver else '?'}: {_line(v)}"
                                 for v in waived[policy.id])
    root = ET.Element("testsuites", {"name": "cloudsync", "tests": suite.get("tests", "0"),
                                     "failures": suite.get("failures", "0"), "skipped": suite.get("skipped", "0")})
    root.append(suite)
    return _dump(root)


def render_tests_junit(run: PolicyTestRun) -> str:
    by_file: dict[str, list[CaseResult]] = defaultdict(list)
    for result in run.results:
        by_file[result.suite or result.file].append(result)
    root = ET.Element("testsuites", {"name": "cloudsync policy test", "tests": str(len(run.results)),
                                     "failures": str(run.failed)})
    for file, results in by_file.items():
        shown = safe_text(file, NAME_LIMIT)
        suite = _suite(shown, len(results), sum(not r.passed for r in results), seconds=sum(r.seconds for r in results))
        for r in results:
            case = ET.SubElement(suite, "testcase", {"classname": shown, "name": safe_text(r.name, 200),
                                                     "time": f"{r.seconds:.3f}", "file": shown, "line": str(r.line)})
            if not r.passed:
                failure = ET.SubElement(case, "failure", {"message": "unexpected policy results"})
                lines = [f"missing violation {p} {a}" for p, a in r.missing]
                lines += [f"unexpected violation {p} {a}" for p, a in r.unexpected]
                lines += [f"missing waived {p} {a}" for p, a in r.waived_missing]
                lines += [f"unexpected waived {p} {a}" for p, a in r.waived_unexpected]
                lines += r.error.split("\n")[:50] if r.error else []
                failure.text = "\n".join(safe_text(line, 2 * TEXT_LIMIT) for line in lines)
        root.append(suite)
    return _dump(root)


def _dump(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")

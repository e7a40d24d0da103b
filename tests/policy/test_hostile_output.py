"""No control character from a pull request reaches a terminal, a PR comment, SARIF or JUnit raw.

A stack (and its own policies, waivers and policy tests) carries ESC sequences, CR/LF
with a fake "No changes." line, BEL, a C1 CSI, bidi overrides and zero-width characters
in every free-text place. Every command and format is run as CI runs it (a subprocess);
the loaders may refuse some of these values, and then their diagnostics must be as safe.
The renderers are also driven directly with hostile data, for values no loader lets in.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from cloudsync.console import safe_rich_text
from cloudsync.diagnostics import Diagnostic
from cloudsync.drift import Drift, DriftKind, DriftReport
from cloudsync.drift_render import render_drift_markdown, render_drift_text
from cloudsync.plan.comment import code, escape, marker, source_link
from cloudsync.plan.model import Action, Change, Plan, Reason
from cloudsync.plan.render import render_markdown, render_text
from cloudsync.policy.junit import render_report_junit, render_tests_junit
from cloudsync.policy.model import Policy, PolicyReport, Violation, Waiver
from cloudsync.policy.render import render_test_text
from cloudsync.policy.render import render_text as render_policy_text
from cloudsync.policy.sarif import render_sarif
from cloudsync.policy.testing import CaseResult, PolicyTestRun
from cloudsync.safe_text import safe_text
from tests.conftest import CLI

FAKE = "\x1b[2J\x1b[H\r\nNo changes.\n\u202e\u200b\x07\x9b31m"
RAW = ("\x1b", "\r", "\x07", "\x9b", "\u202e", "\u200b")


def assert_safe(text: str, where: str = "") -> None:
    """No raw control character, and no line of its own that a pull request wrote."""
    for char in RAW:
        assert char not in text, f"{where}: raw {char!r} in output"
    assert not any(line.strip().startswith("No changes.") for line in text.splitlines()), f"{where}: forged line"


def _json(value: str) -> str:
    return json.dumps(value)


STACK = f"""\
version: 1
stack: shop
targets:
  local: {{provider: local}}
principals:
  api: {{local: {_json("api" + FAKE)}}}
defaults:
  labels: {{owner: team-shop}}
  rotation: 30d
secrets:
  - name: shop/db
    targets: [local]
    value: {{generate: {{length: 32}}}}
  - name: shop/key
    description: {_json("the key" + FAKE)}
    targets: [local]
    value: {{generate: {{length: 32}}}}
    readers: [api]
"""
CLEAN = STACK.replace(_json("api" + FAKE), "api").replace(_json("the key" + FAKE), "the key")
# Names the loader may refuse (patterns are being tightened): whether refused or shown, never raw.
HOSTILE_NAME = f"""\
  - name: {_json("shop/x" + FAKE)}
    targets: [local]
    value: {{generate: {{length: 32}}}}
  - name: "shop/y\\nNo changes."
    targets: [local]
    value: {{generate: {{length: 32}}}}
"""
POLICY = f"""\
policies:
  - id: EVIL1
    title: {_json("evil" + FAKE)}
    severity: error
    rule: 'secret.description == null'
    message: {_json("says" + FAKE + " {{secret}}")}
    rationale: {_json("because" + FAKE)}
    fix: {_json("fix" + FAKE)}
waivers:
  - policy: EVIL1
    secrets: [{_json("nothing" + FAKE)}]
    reason: {_json("reason" + FAKE)}
    expires: 2020-01-01
"""
CASES = f"""\
policies: [EVIL1]
tests:
  - name: {_json("case" + FAKE)}
    input: {{secret: {{name: {_json("app/x" + FAKE)}, description: d}}}}
    expect: [{{policy: EVIL1, address: {_json("local:app/x" + FAKE)}}}]
"""


def _run(stack: Path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSYNC_")}
    env["CLOUDSYNC_LOCAL_KEY"] = "correct horse battery staple, twice over"
    proc = subprocess.run([CLI, *args, "-C", str(stack)], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_no_command_prints_a_raw_control_character_from_a_hostile_stack(tmp_path: Path) -> None:
    stack = tmp_path / "s"
    (stack / "policies" / "tests").mkdir(parents=True)
    (stack / "cloudsync.yaml").write_text(CLEAN)
    code_, out, err = _run(stack, "apply", "--auto-approve")  # so that the plan below has updates to show
    assert code_ == 0, out + err
    (stack / "cloudsync.yaml").write_text(STACK + HOSTILE_NAME)
    (stack / "policies" / "evil.yaml").write_text(POLICY)
    (stack / "policies" / "tests" / "evil.yaml").write_text(CASES)
    (stack / "policies" / ("bad\x1b[2J\u202e.yaml")).write_text("policies: 3\n")  # a file name is input too
    refused = [["validate"], ["plan", "-f", "markdown"], ["policy", "check"], ["policy", "test"]]
    for args in refused:
        code_, out, err = _run(stack, *args)
        assert "Traceback" not in err, args
        assert_safe(out, f"{args} stdout")
        assert_safe(err, f"{args} stderr")
    (stack / "policies" / ("bad\x1b[2J\u202e.yaml")).unlink()  # now let every command get past loading
    (stack / "cloudsync.yaml").write_text(STACK)
    seen = ""
    commands = [["validate"], ["plan"], ["plan", "-f", "markdown"], ["plan", "-f", "json"], ["policy", "check"],
                ["policy", "check", "-f", "sarif"], ["policy", "check", "-f", "junit"], ["policy", "test"],
                ["drift"], ["drift", "-f", "markdown"]]
    for args in commands:
        code_, out, err = _run(stack, *args)
        assert "Traceback" not in err, args
        assert_safe(out, f"{args} stdout")
        assert_safe(err, f"{args} stderr")
        seen += out + err
    # The hostile text was shown (escaped), not just refused everywhere.
    assert "evil\\x1b[2J\\x1b[H\\r\\nNo changes.\\n\\u202e\\u200b\\x07\\x9b31m" in seen


# --- the renderers, with values no loader lets through ---------------------------------------


NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _plan() -> Plan:
    change = Change(address="local:" + FAKE, target="local" + FAKE, provider="local", secret=FAKE,
                    remote_name=FAKE, action=Action.UPDATE, reasons=(Reason.ACCESS,),
                    details=("readers: +" + FAKE, "description changed" + FAKE), file="x" + FAKE + ".yaml", line=3)
    return Plan(stack="shop" + FAKE, changes=[change], created_at=NOW, targets=["local" + FAKE],
                diagnostics=[Diagnostic("bad" + FAKE, file="f" + FAKE, line=1, hint="h" + FAKE)])


def _report() -> PolicyReport:
    policy = Policy(id="EVIL1", title="t" + FAKE, severity="error", rule="true", message="m", rationale="r" + FAKE,
                    fix="f" + FAKE, file="p" + FAKE + ".yaml", line=2)
    violation = Violation(policy="EVIL1", title=policy.title, severity="error", address="local:" + FAKE,
                          secret=FAKE, target="local", message="says" + FAKE, file="c" + FAKE + ".yaml", line=4)
    waiver = Waiver(policy="EVIL1", secrets=(FAKE,), reason="because" + FAKE, expires=date(2030, 1, 1))
    waived = Violation(**{**violation.__dict__, "waiver": waiver})
    return PolicyReport(violations=[violation], waived=[waived], policies=[policy], evaluated=1,
                        diagnostics=[Diagnostic("diag" + FAKE, file="d" + FAKE)])


def _console_text(renderable: Text | str) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(renderable)
    return console.export_text(styles=False)


def test_plan_and_drift_renderers_escape_everything() -> None:
    plan = _plan()
    assert_safe(_console_text(render_text(plan)), "plan text")
    assert_safe(render_markdown(plan, [_report().violations[0].as_dict()]), "plan markdown")
    drift = DriftReport(stack="shop" + FAKE, targets=["local" + FAKE],
                        drifted=[Drift(address="local:" + FAKE, target="local", secret=FAKE,
                                           kind=DriftKind.ACCESS, detail="reader " + FAKE)],
                        diagnostics=[Diagnostic("d" + FAKE)])
    assert_safe(_console_text(render_drift_text(drift)), "drift text")
    assert_safe(render_drift_markdown(drift), "drift markdown")


def test_policy_renderers_escape_everything() -> None:
    report = _report()
    assert_safe(render_policy_text(report), "policy text")
    sarif = render_sarif(report)
    assert_safe(json.loads(sarif) and sarif, "sarif")
    for text in _strings(json.loads(sarif)):
        assert_safe(text, "sarif field")  # what code scanning shows, after JSON decoding
    junit = render_report_junit(report)
    ET.fromstring(junit.split("\n", 1)[1])  # valid XML: 1.0 cannot even hold ESC
    assert_safe(junit, "junit")
    error = Diagnostic("boom" + FAKE, file="t" + FAKE).render()  # how a case's error text is made
    run = PolicyTestRun([CaseResult(name="case" + FAKE, file="t" + FAKE, line=1, missing=[("EVIL1" + FAKE, FAKE)],
                                    error=f"expected an error containing {FAKE!r}, got:\n{error}")])
    assert_safe(render_test_text(run), "policy test text")
    junit = render_tests_junit(run)
    ET.fromstring(junit.split("\n", 1)[1])
    assert_safe(junit, "policy test junit")


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def test_diagnostics_render_on_one_bounded_line() -> None:
    text = Diagnostic("m" + FAKE + "x" * 100_000, file="f" + FAKE, line=1, col=2, hint="h" + FAKE).render()
    assert_safe(text)
    assert "\n" not in text and len(text) < 5000 and "characters)" in text


@pytest.mark.parametrize(("value", "shown"), [
    ("plain/name", "plain/name"),
    ("a\x1b[2Jb", "a\\x1b[2Jb"),
    ("x\r\nNo changes.", "x\\r\\nNo changes."),
    ("rtl\u202eexe.txt", "rtl\\u202eexe.txt"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("line\u2028sep", "line\\u2028sep"),
    ("café ünïcode 名前", "café ünïcode 名前"),  # printable text stays as it is
    ("\ud800", "\\ud800"),  # a lone surrogate
])
def test_safe_text_escapes_controls_and_keeps_printable_text(value: str, shown: str) -> None:
    assert safe_text(value) == shown


def test_safe_text_bounds_what_it_shows() -> None:
    assert safe_text("x" * 10_000, 10) == "xxxxxxxxxx… (10000 characters)"
    assert len(safe_text("\x1b" * 10_000, 10)) < 40  # escapes count against the bound
    looped: list[object] = []
    looped.append(looped)
    assert safe_text(looped) == "[[[[...]]]]" and safe_text(2**100_000).startswith("(an integer of")


def test_markdown_cells_code_spans_links_and_markers_cannot_be_broken_out_of() -> None:
    assert escape("a|b`c<img src=x>\n") == "a&#124;b&#96;c&#60;img src=x&#62;&#92;n"  # see cloudsync.markdown
    assert code("a`b|c") == "``a`b\\|c``" and code("`x") == "`` `x ``"
    assert marker("plan", "x --> <b>hi</b>") == "<!-- cloudsync:plan stack=x_--___b_hi__b_ -->"
    link = source_link("dir/a) [b](http://evil.yaml", 3)
    assert link.endswith("](dir/a%29%20%5Bb%5D%28http%3A/evil.yaml#L3)")


def test_the_consoles_escape_what_a_caller_forgot() -> None:
    """The last line of defence keeps line feeds (it sees whole reports) but no other control."""
    text = Text("ok ")
    text.append("bad" + FAKE, style="red")
    safe = safe_rich_text(text)
    assert not any(char in safe.plain for char in RAW)
    assert safe.plain.startswith("ok bad\\x1b[2J\\x1b[H") and "\\u202e\\u200b" in safe.plain
    assert safe.spans[0].style == "red" and safe.plain[safe.spans[0].start:] == safe.plain[3:]

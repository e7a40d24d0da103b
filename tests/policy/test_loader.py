"""Policy files are checked at load time; every problem is a diagnostic at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cloudsync.diagnostics import CloudsyncError
from cloudsync.policy import builtin_dir
from cloudsync.policy.loader import load_policies

from .helpers import stack_with


def _problems(tmp_path: Path, text: str) -> list[tuple[int | None, str]]:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(CloudsyncError) as info:
        load_policies([builtin_dir(), tmp_path])
    return [(d.line, d.message) for d in info.value.diagnostics if d.file and d.file.endswith("p.yaml")]


def _policy(rule: str, *, match: str | None = None, extra: str = "") -> str:
    lines = ["policies:", "  - id: T001", "    title: t", "    severity: error", f"    rule: '{rule}'",
             "    message: m"]
    if match is not None:
        lines.insert(4, f"    match: '{match}'")
    return "\n".join(lines) + "\n" + extra


@pytest.mark.parametrize(("rule", "expected"), [
    ('secret.lables.env == "prod"', "secret has no field 'lables'"),
    ('secrt.env == "prod"', "unknown variable 'secrt'"),
    ("secret.value.generate.lenght > 3", "secret.value.generate has no field 'lenght'"),
    ('secret.env == "dev" && target.labelz.env == "x"', "target has no field 'labelz'"),  # behind a short circuit
    ('secret.readers.all(r, principals[r].envv == "prod")', "principals[...] has no field 'envv'"),
    ("secret.readers.size() > 0 && secret.readers.x", "secret.readers is a list; it has no field 'x'"),
    ("secret.name.first == 1", "secret.name is a string; it has no field 'first'"),
    ("params.max_readers > 1", "params has no field 'max_readers'"),
    ("lowerAscii(secret.name) == 1", "unknown function or variable 'lowerAscii'"),
    ("secret.name", "rule must be true or false"),
    ("secret.readers.all(secret, secret != 1)", "hides the input variable"),
    ("cs__x == 1", "reserved"),
    ("(1 +", "CEL syntax error in rule"),
])
def test_rule_problems_point_at_the_rule_line(tmp_path: Path, rule: str, expected: str) -> None:
    problems = _problems(tmp_path, _policy(rule))
    assert len(problems) == 1, problems
    line, message = problems[0]
    assert line == 5
    assert expected in message


def test_free_maps_accept_any_key_and_documented_fields_pass(tmp_path: Path) -> None:
    text = _policy('has(secret.labels.team) && principals.exists(p, principals[p].gcp != null) '
                   '&& change.reasons.exists(r, r == "access") && remote.labels.any_key == "x" '
                   '&& timestamp(now) > timestamp("2020-01-01T00:00:00Z") && stack.name != ""',
                   match='secret.certificate != null && secret.certificate.days_left > 1')
    (tmp_path / "p.yaml").write_text(text)
    assert "T001" in load_policies([tmp_path]).policies


def test_syntax_error_in_a_block_scalar_points_at_the_line_inside_it(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
        policies:
          - id: T001
            title: t
            severity: error
            rule: |
              secret.readers.exists(r,
                r == )
            message: m
        """)
    assert problems[0][0] == 7 and "syntax error" in problems[0][1]


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """\
        policies:
          - id: T001
            title: t
            severity: fatal
            rule: 'true'
            message: m
          - id: T002
            title: t
            severity: error
            rule: 'true'
            message: "{nope}"
            tags: [x]
          - id: CS001
            title: duplicate of a built-in
            severity: error
            rule: 'true'
            message: m
        waivers:
          - {policy: T404, secrets: ["*"], reason: r, expires: 2030-01-01}
          - {policy: T002, secrets: ["*"], expires: 2030-01-01}
        """)
    assert [(line, message.split(" (first at")[0]) for line, message in problems] == [
        (4, "severity: input should be 'error' or 'warning'"),
        (12, "unknown key 'tags'"),
        (20, "missing required key 'reason'"),
        (13, "policy id 'CS001' is defined twice"),
        (19, "waiver of unknown policy 'T404'"),
    ]
    assert "access.yaml:3)" in problems[3][1]


def test_message_placeholders_are_checked(tmp_path: Path) -> None:
    problems = _problems(tmp_path, _policy("true").replace("message: m", 'message: "{nope} at {address}"'))
    assert problems == [(6, "message names unknown placeholder {nope}")]


def test_bad_yaml_is_a_diagnostic(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "policies:\n  - id: [unclosed\n")
    assert problems and "YAML syntax error" in problems[0][1]


def test_missing_policy_folder(tmp_path: Path) -> None:
    with pytest.raises(CloudsyncError, match="does not exist"):
        load_policies([tmp_path / "nope"])


# --- stack settings ------------------------------------------------------------------------


def test_unknown_ids_and_parameters_in_stack_settings_point_at_cloudsync_yaml(tmp_path: Path) -> None:
    from cloudsync.policy import evaluate

    head = """\
        version: 1
        stack: demo
        targets: {local: {provider: local}}
        policy:
          disabled: [CS006, CS999]
          parameters:
            CS003: {max_readerz: 2}
            CS009: {pattern: 5}
            XX1: {a: 1}
        """
    stack = stack_with(tmp_path, "[]", head=textwrap.dedent(head))
    with pytest.raises(CloudsyncError) as info:
        evaluate(stack)
    got = [(d.file, d.line, d.message) for d in info.value.diagnostics]
    file = str(tmp_path / "cloudsync.yaml")
    assert got == [
        (file, 5, "policy.disabled names unknown policy 'CS999'"),
        (file, 7, "policy CS003 has no parameter 'max_readerz'"),
        (file, 8, "parameter 'pattern' of CS009 must be a string, got an integer"),
        (file, 9, "parameters for unknown policy 'XX1'"),
    ]


def test_policy_dirs_of_the_stack_are_loaded_and_missing_ones_point_at_their_line(tmp_path: Path) -> None:
    from cloudsync.policy import evaluate

    head = "version: 1\nstack: demo\ntargets: {local: {provider: local}}\npolicy:\n  dirs: [shared, nope]\n"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "p.yaml").write_text(
        "policies:\n  - {id: SH1, title: t, severity: warning, rule: 'false', message: m}\n")
    stack = stack_with(tmp_path, "[]", head=head)
    with pytest.raises(CloudsyncError) as info:
        evaluate(stack)
    (diag,) = info.value.diagnostics
    assert (diag.line, diag.message) == (5, "policy folder 'nope' does not exist")
    stack = stack_with(tmp_path, "- {name: app/x, targets: [local]}\n", head=head.replace(", nope", ""))
    assert "SH1" in {v.policy for v in evaluate(stack).violations}

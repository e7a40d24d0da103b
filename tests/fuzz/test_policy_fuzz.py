"""Fuzz the policy loader, parameter checks and evaluator: a diagnostic or a result, never a traceback or a hang.

Policy files are generated from YAML-typed values (dates, timestamps, 65-bit integers,
non-finite floats, nested lists and mappings, strings with control characters) placed
where the format expects something else, and from CEL expressions assembled from real
fragments (input variables, fields, comprehensions, operators, literals) and junk.
Whatever loads is then given YAML-typed parameter overrides and evaluated.

CLOUDSYNC_FUZZ_EXAMPLES sets the number of cases per test (default 50, for CI); a long
run is ``CLOUDSYNC_FUZZ_EXAMPLES=20000 pytest tests/fuzz/test_policy_fuzz.py
--hypothesis-show-statistics``, which also counts how cases ended. Budgets are lowered
so that a case that spends one costs a second, not ten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cloudsync.config.models import PolicyConfig
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.policy.budget import Budget
from cloudsync.policy.engine import Evaluator, TargetInput
from cloudsync.policy.loader import load_policies
from cloudsync.policy.settings import enabled_policies
from cloudsync.policy.testing import complete_document

EXAMPLES = int(os.environ.get("CLOUDSYNC_FUZZ_EXAMPLES", "50"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BUDGET = Budget(rule_seconds=1, run_seconds=5, memory_mb=512)
RAW_CONTROLS = [chr(c) for c in range(32) if c != 10] + ["\x7f", "\x9b", "\u202e", "\u200b", "\u2028"]

# --- YAML values ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.text(alphabet=st.sampled_from(["a", "*", "\n", "\x1b", "\u202e", "{", "}", ":", "0"]), max_size=12),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)

# --- CEL expressions -----------------------------------------------------------------------

_ATOMS = ["secret.name", "secret.labels", "secret.readers", "secret.env", "secret.rotation_days",
          "secret.value.generate.length", "target.provider", "target.labels.env", "principals", "params.limit",
          "change.reasons", "remote.labels", "now", "stack.name", "secret.nope", "unknown", "cs__S", "1", "2.5",
          "-9223372036854775808", "99999999999999999999", '"prod"', "'*'", "true", "null", "[1, 2, 3]",
          '{"a": 1}', "b'x'", 'r"\\d+"', "size(secret.readers)", 'timestamp("2020-01-01T00:00:00Z")']
_JUNK = ["(", ")", "[", "]", ".", ",", "&&", "||", "?", ":", "!", "\\", "\x00", "\x1b[2J", "'", '"', "/*", "\n"]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth < 4 else 3))
    if kind <= 2:
        return draw(st.sampled_from(_ATOMS))
    if kind == 3:
        return "".join(draw(st.lists(st.sampled_from(_ATOMS + _JUNK), max_size=6)))
    if kind in (4, 5):
        op = draw(st.sampled_from(["==", "!=", "<", ">=", "&&", "||", "+", "/", "in", "%"]))
        return f"{draw(expressions(depth + 1))} {op} {draw(expressions(depth + 1))}"
    if kind in (6, 7):
        macro = draw(st.sampled_from(["all", "exists", "exists_one", "map", "filter"]))
        var = draw(st.sampled_from(["x", "y", "secret", "r"]))
        return f"{draw(expressions(depth + 1))}.{macro}({var}, {draw(expressions(depth + 1))})"
    if kind == 8:
        fn = draw(st.sampled_from(["size", "has", "matches", "startsWith", "string", "int", "lowerAscii"]))
        return f"{fn}({draw(expressions(depth + 1))})"
    return f"!({draw(expressions(depth + 1))}) ? {draw(expressions(depth + 1))} : false"


# --- policy files --------------------------------------------------------------------------


_GOOD_RULES = st.sampled_from(['secret.name != ""', "size(secret.readers) <= params.limit",
                               'secret.readers.all(r, r in principals)', "params.limit.exists(x, x == secret.name)",
                               'secret.labels.exists(k, k == "env") || target.provider == "local"'])
_MESSAGES = st.sampled_from(["m", "{address}", "{secret} in {target}", "{address}: {limit}"])
_DEFAULTS = st.one_of(st.integers(-5, 5), st.text(max_size=5), st.lists(st.text(max_size=5), max_size=3),
                      st.lists(st.integers(0, 9), max_size=3), st.floats(0, 10), st.booleans())


def _mostly(usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` four times in five, any YAML value otherwise."""
    return st.one_of(usual, usual, usual, usual, values)


@st.composite
def _spoiled(draw: st.DrawFn, entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with one key given any YAML value, or an unknown key added."""
    key = draw(st.sampled_from([*entry, draw(st.text(max_size=6))]))
    return {**entry, key: draw(values)}


@st.composite
def policy_entries(draw: st.DrawFn) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": draw(st.sampled_from(["F001", "F002", "CS001"])),
        "title": "fuzzed",
        "severity": draw(st.sampled_from(["error", "warning"])),
        "rule": draw(st.one_of(_GOOD_RULES, _GOOD_RULES, _GOOD_RULES, expressions())),
        "message": draw(st.one_of(_MESSAGES, _MESSAGES, _MESSAGES, _MESSAGES, _MESSAGES, _MESSAGES,
                                  st.sampled_from(["{secret:>99999}", "{x}", "{", "{secret!r}"]))),
    }
    if draw(st.booleans()):
        entry["match"] = draw(st.one_of(_GOOD_RULES, _GOOD_RULES, _GOOD_RULES, expressions()))
    if draw(st.integers(0, 5)):
        entry["parameters"] = {"limit": {"default": draw(st.one_of(st.lists(st.text(max_size=5), max_size=3),
                                                                   _mostly(_DEFAULTS)))}}
    return entry


@st.composite
def policy_files(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {"policies": draw(st.lists(policy_entries(), min_size=1, max_size=2,
                                                     unique_by=lambda e: str(e.get("id"))))}
    if draw(st.booleans()):
        doc["waivers"] = [{"policy": doc["policies"][0]["id"], "secrets": ["app/*"], "reason": "r",
                           "expires": draw(st.dates(date(2000, 1, 1), date(2100, 1, 1)))}]
    # A quarter of the files are one mistake away from valid: any YAML value where an entry's
    # key expects something else, or an unknown key; the rest load often enough to be evaluated.
    if draw(st.integers(0, 3)) == 0:
        entries = [("policies", i) for i in range(len(doc["policies"]))] + [("waivers", 0)] * ("waivers" in doc)
        kind, i = draw(st.sampled_from(entries))
        doc[kind][i] = draw(_spoiled(doc[kind][i]))
    return draw(values) if draw(st.integers(0, 19)) == 0 else doc


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=False, sort_keys=False)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cloudsync-fuzz-") as tmp:
        yield Path(tmp)


def _assert_diagnostics(exc: CloudsyncError) -> None:
    assert exc.diagnostics, "an error with no diagnostic"
    for diag in exc.diagnostics:
        assert isinstance(diag, Diagnostic)
        shown = diag.render()
        assert "\n" not in shown and not any(c in shown for c in RAW_CONTROLS), shown


def _load(folder: Path, text: str) -> Any:
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    try:
        policy_set = load_policies([folder], BUDGET)
    except CloudsyncError as exc:
        _assert_diagnostics(exc)
        event("load: diagnostics")
        return None
    event("load: loaded")
    return policy_set


@FUZZ
@given(data=policy_files(), overrides=st.dictionaries(st.sampled_from(["F001", "F002", "CS001", "limit"]),
                                                      st.dictionaries(st.sampled_from(["limit", "x"]),
                                                                      _mostly(_DEFAULTS), max_size=2), max_size=2))
@example(data={"policies": [{"id": "F001", "title": "t", "severity": "error", "rule": "params.limit.all(x, x > 0)",
                             "message": "m", "parameters": {"limit": {"default": [1]}}}]},
         overrides={"F001": {"limit": [date(2024, 1, 1)]}})  # the date in a parameter list
@example(data={"policies": [{"id": "F001", "title": "t", "severity": "error", "message": "{secret:>999999999}",
                             "rule": "".join(f"[1,2,3].all({v}, " for v in "abcde") + "true" + ")" * 5}]},
         overrides={})  # too deep, and a format spec that would allocate a gigabyte per violation
def test_policy_files_end_in_diagnostics_or_results(folder: Path, data: Any, overrides: dict[str, Any]) -> None:
    policy_set = _load(folder, _dump(data))
    if policy_set is None:
        return
    try:
        enabled = enabled_policies(policy_set.policies, PolicyConfig(parameters=overrides))
    except CloudsyncError as exc:
        _assert_diagnostics(exc)
        event("parameters: diagnostics")
        return
    doc = complete_document({"secret": {"name": "app/x", "readers": ["a"]}, "principals": {"a": {}}}, "f.yaml", 1)
    evaluator = Evaluator(enabled, principals=doc["principals"], stack=doc["stack"], now="2026-06-01T00:00:00Z",
                          budget=BUDGET)
    found = evaluator.evaluate([doc["secret"]], [[TargetInput(doc["target"])]])
    assert all(v.policy in policy_set.policies for v in found)
    event(f"evaluated: {len(enabled)} policies, {len(found)} violations, {len(evaluator.diagnostics)} over budget")


@FUZZ
@given(text=st.one_of(st.text(max_size=400),
                      st.builds(lambda base, cut, junk: base[:cut] + junk + base[cut:],
                                st.just(_dump({"policies": [{"id": "F001", "title": "t", "severity": "error",
                                                             "rule": "secret.name != ''", "message": "m"}]})),
                                st.integers(0, 90), st.text(max_size=20))))
def test_policy_file_text_ends_in_diagnostics_or_results(folder: Path, text: str) -> None:
    _load(folder, text)

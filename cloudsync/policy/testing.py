"""Policy tests (``cloudsync policy test``): inputs and the exact violations they must produce.

A test file holds cases; each case is an input stack (inline ``cloudsync.yaml`` text plus
optional extra files, loaded like a real stack) or one input document (merged over a
neutral base document), and the exact set of expected violations as (policy, address)
pairs, like ``opa test``. Only the policies a file or case names are compared, so a case
about CS001 does not break when another policy is added.
"""

from __future__ import annotations

import copy
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloudsync.config.fields import no_items
from cloudsync.config.files import read_yaml_text
from cloudsync.config.loader import load_stack
from cloudsync.config.models import PolicyConfig
from cloudsync.config.yamlsource import SourceMap, YamlError, load_yaml
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.policy.document import (
    PROVIDERS,
    environment_of,
    input_schema,
    now_text,
    validate,
)
from cloudsync.policy.engine import Evaluator, TargetInput, evaluate, moment
from cloudsync.policy.loader import PolicySet, display_path, load_policies, policy_dirs, pydantic_diagnostics
from cloudsync.policy.model import Violation
from cloudsync.policy.settings import enabled_policies
from cloudsync.policy.waivers import apply_waivers

Pair = tuple[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Strict):
    policy: str
    address: str


class CaseModel(_Strict):
    name: str = Field(min_length=1)
    policies: list[str] | None = None
    today: date | None = None
    stack: str | dict[str, Any] | None = None
    files: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    input: dict[str, Any] | None = None
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    expect: list[Expected] = Field(default_factory=no_items)
    expect_waived: list[Expected] | None = None
    expect_error: str | None = None

    @model_validator(mode="after")
    def _one_input(self) -> CaseModel:
        if (self.stack is None) == (self.input is None):
            raise ValueError("a test case needs exactly one of 'stack' (an input stack) or 'input' (a document)")
        if self.input is not None and self.files:
            raise ValueError("'files' goes with 'stack'")
        if self.stack is not None and self.parameters:
            raise ValueError("set parameters in the stack's policy.parameters")
        return self


class PolicyTestFile(_Strict):
    policies: list[str] | None = None
    tests: list[CaseModel] = Field(min_length=1)


@dataclass
class CaseResult:
    """The outcome of one case: passed, or what was missing and unexpected."""

    name: str
    file: str
    line: int
    missing: list[Pair] = field(default_factory=list)
    unexpected: list[Pair] = field(default_factory=list)
    waived_missing: list[Pair] = field(default_factory=list)
    waived_unexpected: list[Pair] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    suite: str = ""  # stable, machine-independent name of the test file (JUnit classname)

    @property
    def passed(self) -> bool:
        return not (self.missing or self.unexpected or self.waived_missing or self.waived_unexpected or self.error)


@dataclass
class PolicyTestRun:
    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def find_test_files(paths: Sequence[Path]) -> list[Path]:
    """Test files under ``paths`` (folders are searched for ``*.yaml``, not recursively)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        elif path.is_file():
            found.append(path)
        else:
            raise CloudsyncError(Diagnostic(f"no policy tests at {display_path(path)}"))
    return found


def suite_name(path: Path, root: Path | None) -> str:
    """``builtin/CS014`` for the built-in pack's tests, else the file's path relative to the stack
    folder (``root``), so a JUnit report reads the same on every machine and names no site-packages."""
    from cloudsync.policy.loader import builtin_dir

    resolved = path.resolve()
    builtin = (builtin_dir() / "tests").resolve()
    if resolved.is_relative_to(builtin):
        return f"builtin/{resolved.relative_to(builtin).with_suffix('').as_posix()}"
    if root is not None and resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix()
    return Path(display_path(path)).as_posix() if not Path(display_path(path)).is_absolute() else path.name


def run_policy_tests(paths: Sequence[Path], *, policy_dirs_: Sequence[Path] = (), name_filter: str | None = None,
                     root: Path | None = None) -> PolicyTestRun:
    """Run every case of the test files under ``paths`` against the built-in pack and ``policy_dirs_``.

    ``root`` is the stack folder the results' suite names are relative to."""
    policy_set = load_policies(policy_dirs(None, (), policy_dirs_))
    pattern = re.compile(name_filter) if name_filter else None
    run = PolicyTestRun()
    for path in find_test_files(paths):
        cases, smap = _load_file(path)
        for i, case in enumerate(cases.tests):
            if pattern is not None and not pattern.search(case.name):
                continue
            line = smap.locate(("tests", i))[0]
            result = CaseResult(case.name, smap.file, line, suite=suite_name(path, root))
            started = time.perf_counter()
            selected = case.policies or cases.policies
            try:
                _check_selected(selected, policy_set, smap, i)
                if case.input is not None:
                    found, waived = _run_document(case, policy_set, smap, i)
                else:
                    found, waived = _run_stack(case, policy_dirs_)
            except CloudsyncError as exc:
                _expect_error(result, case, exc)
            else:
                if case.expect_error is not None:
                    result.error = f"expected an error containing {case.expect_error!r}, but the case loaded"
                _compare(result, case, selected, found, waived)
            result.seconds = time.perf_counter() - started
            run.results.append(result)
    return run


def _load_file(path: Path) -> tuple[PolicyTestFile, SourceMap]:
    shown = display_path(path)
    try:
        data, smap = load_yaml(read_yaml_text(path, shown, within=path.parent), shown)
    except YamlError as exc:
        raise CloudsyncError(exc.diagnostics) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CloudsyncError(Diagnostic(f"cannot read policy tests: {exc.__class__.__name__}", file=shown)) from None
    if not isinstance(data, dict):
        raise CloudsyncError(smap.at((), "a policy test file must be a mapping with a 'tests' list"))
    try:
        return PolicyTestFile.model_validate(data), smap
    except ValidationError as exc:
        raise CloudsyncError(pydantic_diagnostics(exc, data, smap, ())) from None


def _check_selected(selected: list[str] | None, policy_set: PolicySet, smap: SourceMap, index: int) -> None:
    for pid in selected or []:
        if pid not in policy_set.policies:
            raise CloudsyncError(smap.at(("tests", index), f"the case names unknown policy {pid!r}"))


def _expect_error(result: CaseResult, case: CaseModel, exc: CloudsyncError) -> None:
    text = "\n".join(d.render() for d in exc.diagnostics)
    if case.expect_error is None:
        result.error = text
    elif case.expect_error not in text:
        result.error = f"expected an error containing {case.expect_error!r}, got:\n{text}"


def _pairs(violations: Sequence[Violation], selected: list[str] | None) -> set[Pair]:
    return {(v.policy, v.address) for v in violations if selected is None or v.policy in selected}


def _compare(result: CaseResult, case: CaseModel, selected: list[str] | None,
             found: Sequence[Violation], waived: Sequence[Violation]) -> None:
    want = {(e.policy, e.address) for e in case.expect}
    got = _pairs(found, selected)
    result.missing, result.unexpected = sorted(want - got), sorted(got - want)
    if case.expect_waived is not None:
        want_w = {(e.policy, e.address) for e in case.expect_waived}
        got_w = _pairs(waived, selected)
        result.waived_missing, result.waived_unexpected = sorted(want_w - got_w), sorted(got_w - want_w)


def _run_stack(case: CaseModel, dirs: Sequence[Path]) -> tuple[list[Violation], list[Violation]]:
    with tempfile.TemporaryDirectory(prefix="cloudsync-policy-test-") as tmp:
        root = Path(tmp)
        _write(root / "cloudsync.yaml", case.stack)
        for name, content in case.files.items():
            target = (root / name).resolve()
            if not target.is_relative_to(root.resolve()):
                raise CloudsyncError(Diagnostic(f"test file path {name!r} leaves the test stack"))
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(target, content)
        report = evaluate(load_stack(root), extra_dirs=dirs, today=case.today)
        return report.violations, report.waived


def _write(path: Path, content: Any) -> None:
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")


# --- input documents -----------------------------------------------------------------------


def base_document(file: str, line: int) -> dict[str, Any]:
    """A neutral document that cases override: a local secret with nothing set."""
    return {
        "secret": {"name": "app/secret", "description": None, "labels": {}, "readers": [],
                   "value": {"kind": "none", "generate": None}, "rotation_days": None, "expires_days": None,
                   "deletion_protection": False, "purge_on_delete": False, "certificate": None,
                   "file": file, "line": line},
        "target": {"name": "local", "provider": "local", "labels": {}},
        "principals": {},
        "stack": {"name": "test", "targets": []},
        "change": None,
        "remote": None,
    }


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(over)


def complete_document(data: dict[str, Any], file: str, line: int) -> dict[str, Any]:
    """Merge a case's input over the base and derive what it leaves out (env, resolved readers)."""
    doc: dict[str, Any] = _merge(base_document(file, line), _plain(data))
    secret, target = doc["secret"], doc["target"]
    principals = {}
    for name, given in (doc["principals"] or {}).items():
        given = given or {}
        principal = {"aws": None, "gcp": None, "azure": None, "local": name, "labels": {}, **given}
        principal.setdefault("env", environment_of(name, principal["labels"]))
        principals[name] = principal
    doc["principals"] = principals
    if isinstance(secret.get("labels"), dict):
        secret.setdefault("env", secret["labels"].get("env", ""))
    if "readers_resolved" not in secret and isinstance(secret.get("readers"), list):
        secret["readers_resolved"] = {p: [principals[r][p] for r in secret["readers"]
                                          if r in principals and principals[r].get(p)] for p in PROVIDERS}
    if isinstance(target.get("name"), str):
        target.setdefault("env", environment_of(target["name"], target.get("labels")))
    if not doc["stack"].get("targets") and isinstance(target.get("name"), str):
        doc["stack"]["targets"] = [target["name"]]
    return doc


MAX_INPUT_DEPTH = 32  # the input document is at most a few levels deep; deeper is a mistake or an attack


def _plain(value: Any, depth: int = 0) -> Any:
    """YAML dates as RFC 3339 strings, as the document carries them."""
    if depth > MAX_INPUT_DEPTH:
        raise CloudsyncError(Diagnostic(f"the test input nests more than {MAX_INPUT_DEPTH} levels deep"))
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return now_text(moment)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _run_document(case: CaseModel, policy_set: PolicySet, smap: SourceMap,
                  index: int) -> tuple[list[Violation], list[Violation]]:
    assert case.input is not None
    file, line = smap.file, smap.locate(("tests", index))[0]
    if "params" in case.input or "now" in case.input:
        raise CloudsyncError(Diagnostic("a test input sets params or now", file=file, line=line,
                                        hint="use the case's 'parameters' and 'today' keys"))
    try:
        doc = complete_document(case.input, file, line)
    except CloudsyncError as exc:
        raise CloudsyncError([replace(d, file=file, line=line) for d in exc.diagnostics]) from None
    schema = input_schema()
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in ("params", "now")}
    schema["required"] = sorted(schema["properties"])
    problems = validate(doc, schema)
    if problems:
        raise CloudsyncError([Diagnostic(f"input.{'.'.join(map(str, path))}: {msg}", file=file, line=line,
                                         hint="`cloudsync policy schema` prints the input document")
                              for path, msg in problems])
    enabled = enabled_policies(policy_set.policies, PolicyConfig(parameters=case.parameters), smap, ("tests", index))
    day, now = moment(case.today)
    evaluator = Evaluator(enabled, principals=doc["principals"], stack=doc["stack"], now=now_text(now))
    found = evaluator.evaluate([doc["secret"]], [[TargetInput(doc["target"], doc["change"], doc["remote"])]])
    pair = (doc["secret"]["name"], doc["target"]["name"])
    kept, waived, _ = apply_waivers(found, policy_set.waivers, day, [pair], [pair[0]],
                                    [e.compiled.policy.id for e in enabled])
    return kept, waived


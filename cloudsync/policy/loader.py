"""Load policy files: YAML → validated policies and waivers, each CEL expression compiled once.

Every problem is a :class:`Diagnostic` at ``file:line`` and all of them are collected in
one run: bad YAML, unknown keys, CEL syntax errors, references to fields the input
document does not have, expressions past the static limits or too costly to check,
parameter defaults of no usable type, duplicate ids, waivers of unknown policies.

No CEL runs in this process: expressions compile and run on a sample document in the
budgeted evaluator process (:mod:`cloudsync.policy.budget`), all of a load in one job.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import re
import string
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudsync.config.fields import no_items
from cloudsync.config.files import read_yaml_text
from cloudsync.config.yamlsource import SourceMap, YamlError, load_yaml
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Diagnostics
from cloudsync.policy.budget import CHECK_SECONDS, Budget, Spent, prestart, run_tasks, static_problems
from cloudsync.policy.document import TARGET_ROOTS, input_schema, params_schema, sample
from cloudsync.policy.model import Parameter, Policy, Waiver
from cloudsync.policy.params import declared_type
from cloudsync.policy.references import Problem, check_references, references_roots

M = TypeVar("M", bound=BaseModel)
MESSAGE_FIELDS = frozenset({"secret", "target", "address"})


def builtin_dir() -> Path:
    """The built-in pack: ``cloudsync/_policies`` in a wheel, else the repository's ``policies/``."""
    beside = Path(__file__).resolve().parent.parent / "_policies"
    if beside.is_dir():  # a package on disk (every ordinary install): no importlib.resources machinery needed
        return beside
    try:
        packaged = importlib.resources.files("cloudsync") / "_policies"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover - unusual installs
        pass
    return Path(__file__).resolve().parent.parent.parent / "policies"


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (SARIF wants relative URIs)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):  # pragma: no cover - another drive on Windows
        return str(path)


# --- the file format -----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterModel(_Strict):
    default: str | bool | int | float | list[str | int | float | bool]
    description: str = Field(default="", max_length=1000)


class PolicyModel(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    severity: Literal["error", "warning"]
    match: str | None = None
    rule: str = Field(min_length=1)
    message: str = Field(min_length=1, max_length=1000)
    rationale: str = Field(default="", max_length=4000)
    fix: str = Field(default="", max_length=2000)
    parameters: dict[str, ParameterModel] = Field(default_factory=dict)


class WaiverModel(_Strict):
    policy: str = Field(max_length=64)
    secrets: list[Annotated[str, Field(max_length=600)]] = Field(min_length=1, max_length=1000)
    targets: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=lambda: ["*"], min_length=1,
                                                                 max_length=1000)
    reason: str = Field(min_length=1, max_length=1000)
    expires: date


class PolicyFileModel(_Strict):
    policies: list[PolicyModel] = Field(default_factory=no_items)
    waivers: list[WaiverModel] = Field(default_factory=no_items)


# --- compiled policies ---------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy whose match and rule compiled and passed the load-time checks, and the document roots they read."""

    policy: Policy
    roots: frozenset[str]

    @property
    def per_target(self) -> bool:
        """False when the result depends on the secret only, so it is shared by its targets."""
        return bool(self.roots & TARGET_ROOTS)


@dataclass
class _Expression:
    """A match or rule waiting for its check in the evaluator."""

    part: str
    source: str
    path: tuple[Hashable, ...]  # where it is in its YAML file
    problems: list[Problem]  # from the reference checker: reported only when it compiles


@dataclass
class _Pending:
    policy_id: str
    smap: SourceMap
    lines: list[str]
    doc: dict[str, Any]  # a fully populated sample document
    expressions: list[_Expression]


@dataclass
class PolicySet:
    policies: dict[str, CompiledPolicy] = field(default_factory=dict)
    waivers: list[Waiver] = field(default_factory=list)


def policy_dirs(root: Path | None, configured: Sequence[str], extra: Sequence[Path], *,
                builtin: bool = True) -> list[Path]:
    """Folders to load, built-in pack first (unless turned off), then the stack's, its configured ones, and extras."""
    dirs = [builtin_dir()] if builtin else []
    if root is not None:
        if (root / "policies").is_dir():
            dirs.append(root / "policies")
        dirs += [root / d for d in configured]
    dirs += list(extra)
    unique: list[Path] = []
    for d in dirs:
        if not any(_same(d, u) for u in unique):
            unique.append(d)
    return unique


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover
        return a == b


def load_policies(dirs: Sequence[Path], budget: Budget | None = None) -> PolicySet:
    """Load every ``*.yaml`` of ``dirs``; raise CloudsyncError with every problem."""
    diags = Diagnostics()
    result = PolicySet()
    builtin = builtin_dir()
    files: list[tuple[Path, bool]] = []
    for folder in dirs:
        if not folder.is_dir():
            diags.add(Diagnostic(f"policy folder {display_path(folder)} does not exist",
                                 hint="check --policy-dir and policy.dirs in cloudsync.yaml"))
            continue
        is_builtin = _same(folder, builtin)
        files += [(path, is_builtin) for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])]
    budget = budget or Budget.from_env()
    if files:
        prestart(budget)  # the evaluator starts while the files are read
    pending: list[_Pending] = []
    for path, is_builtin in files:
        _load_file(path, is_builtin, result, diags, pending)
    _check_expressions(pending, result, budget, diags)
    for waiver in result.waivers:
        if waiver.policy not in result.policies:
            diags.add(Diagnostic(f"waiver of unknown policy {waiver.policy!r}", file=waiver.file, line=waiver.line,
                                 hint=_suggest(waiver.policy, list(result.policies))))
    if diags.has_errors:
        raise CloudsyncError(diags.items)
    return result


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known policies: {', '.join(sorted(choices)) or 'none'}"


def _load_file(path: Path, builtin: bool, result: PolicySet, diags: Diagnostics, pending: list[_Pending]) -> None:
    shown = display_path(path)
    try:
        text = read_yaml_text(path, shown, within=path.parent)
        data, smap = load_yaml(text, shown)
    except (OSError, UnicodeDecodeError) as exc:
        diags.add(Diagnostic(f"cannot read policy file: {exc.__class__.__name__}", file=shown))
        return
    except YamlError as exc:
        diags.extend(exc.diagnostics)
        return
    if data is None:
        return
    if not isinstance(data, dict):
        diags.add(smap.at((), "a policy file must be a mapping with 'policies' and/or 'waivers'"))
        return
    try:
        PolicyFileModel.model_validate({k: [] if isinstance(v, list) else v for k, v in data.items()})
    except ValidationError as exc:
        diags.extend(pydantic_diagnostics(exc, data, smap, ()))
        return
    # Each policy and waiver is validated on its own, so one bad entry hides nothing.
    policies = [(i, m) for i, m in enumerate(_each(PolicyModel, data.get("policies"), "policies", smap, diags))
                if m is not None]
    waivers = [(i, m) for i, m in enumerate(_each(WaiverModel, data.get("waivers"), "waivers", smap, diags))
               if m is not None]
    lines = text.splitlines()
    for i, model in policies:
        where = ("policies", i)
        first = result.policies.get(model.id)
        if first is not None:
            diags.add(smap.at((*where, "id"), f"policy id {model.id!r} is defined twice "
                              f"(first at {first.policy.file}:{first.policy.line})",
                              hint="ids are stable and unique; turn a built-in off with policy.disabled"))
            continue
        prepared = _prepare(model, smap, where, lines, builtin, diags)
        if prepared is not None:
            result.policies[model.id], waiting = prepared
            pending.append(waiting)
    for i, w in waivers:
        result.waivers.append(Waiver(policy=w.policy, secrets=tuple(w.secrets), reason=w.reason, expires=w.expires,
                                     targets=tuple(w.targets), file=shown, line=smap.locate(("waivers", i))[0]))


def _each(model: type[M], items: Any, key: str, smap: SourceMap, diags: Diagnostics) -> list[M | None]:
    out: list[M | None] = []
    for i, item in enumerate(items or []):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            diags.extend(pydantic_diagnostics(exc, item, smap, (key, i)))
            out.append(None)
    return out


def _prepare(model: PolicyModel, smap: SourceMap, where: tuple[Hashable, ...], lines: list[str], builtin: bool,
             diags: Diagnostics) -> tuple[CompiledPolicy, _Pending] | None:
    """Every check that needs no CEL; the policy and its expressions to check in the evaluator."""
    params = [Parameter(name, p.default, p.description) for name, p in model.parameters.items()]
    policy = Policy(id=model.id, title=model.title, severity=model.severity, rule=model.rule, message=model.message,
                    match=model.match, rationale=model.rationale.strip(), fix=model.fix.strip(),
                    parameters=tuple(params), file=smap.file, line=smap.locate(where)[0], builtin=builtin)
    before = len(diags)
    for name, parameter in model.parameters.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
            diags.add(smap.at((*where, "parameters", name), f"invalid parameter name {name!r}", key=True,
                              hint="lowercase letters, digits and '_', starting with a letter"))
        _, problem = declared_type(parameter.default)
        if problem is not None:
            inside, what = problem
            diags.add(smap.at((*where, "parameters", name, "default", *inside), f"the default of {name!r} {what}",
                              hint="a default declares the parameter's type: a string, number, boolean or a list of one"))
    _check_message(model, smap, where, diags)
    if len(diags) > before:
        return None
    schema = input_schema(params_schema(policy.defaults))
    doc = sample(schema)
    doc["params"] = policy.defaults
    expressions: list[_Expression] = []
    for part in ("match", "rule"):
        source = getattr(model, part)
        if source is None:
            continue
        path = (*where, part)
        limits = static_problems(source)
        if limits:
            _report(limits, part, source, smap, path, lines, diags)
            continue
        expressions.append(_Expression(part, source, path, check_references(source, schema["properties"])))
    if len(diags) > before:
        return None
    roots = references_roots(model.rule, schema["properties"]) | references_roots(model.match or "",
                                                                                   schema["properties"])
    return CompiledPolicy(policy, roots), _Pending(model.id, smap, lines, doc, expressions)


def _check_expressions(pending: list[_Pending], result: PolicySet, budget: Budget, diags: Diagnostics) -> None:
    """Compile every expression and run it on its sample, in one evaluator job; drop policies that fail."""
    jobs = [(p, e) for p in pending for e in p.expressions]
    if not jobs:
        return
    tasks = [("check", e.source, None if e.problems else p.doc) for p, e in jobs]
    outcomes = run_tasks(None, tasks, budget, rule_seconds=min(CHECK_SECONDS, budget.rule_seconds),
                         rule_setting="for a load-time check")
    for (p, e), outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, Spent):
            line, col = p.smap.locate(e.path)
            diags.add(Diagnostic(f"{e.part} could not be checked: {outcome.reason}", file=p.smap.file, line=line,
                                 col=col, hint="a rule must be cheap to evaluate; see 'Budgets' in docs/policy.md"))
        elif outcome[0] == "syntax":
            diags.add(_syntax_diagnostic(outcome[1], e, p))
        else:
            problems = e.problems or _sample_problems(outcome, e.part)
            if not problems:
                continue
            _report(problems, e.part, e.source, p.smap, e.path, p.lines, diags)
        result.policies.pop(p.policy_id, None)


def _check_message(model: PolicyModel, smap: SourceMap, where: tuple[Hashable, ...], diags: Diagnostics) -> None:
    allowed = MESSAGE_FIELDS | set(model.parameters)
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(model.message) if f is not None]
    except ValueError as exc:
        diags.add(smap.at((*where, "message"), f"bad message template: {exc}", hint="write '{{' for a brace"))
        return
    if any(spec or conv for _, spec, conv in fields):
        # A format spec is a cost knob ('{secret:>999999999}' is a gigabyte per violation).
        diags.add(smap.at((*where, "message"), "message placeholders take no format spec or conversion",
                          hint="write {name}, not {name:...} or {name!r}"))
    for name, _, _ in fields:
        if name not in allowed:
            diags.add(smap.at((*where, "message"), f"message names unknown placeholder {{{name}}}",
                              hint=f"placeholders: {', '.join('{' + a + '}' for a in sorted(allowed))}"))


_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): (.*)")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


def _syntax_diagnostic(text: str, e: _Expression, p: _Pending) -> Diagnostic:
    vline, vcol = p.smap.locate(e.path)
    found = _CEL_ERROR.search(text)
    if found:
        offset = _offset(e.source, int(found.group(1)), int(found.group(2)))
        line, col = expression_position(p.lines, vline, vcol, e.source, offset)
        message = found.group(3).strip()
    else:
        line, col, message = vline, vcol, text.splitlines()[0] if text else "invalid expression"
    return Diagnostic(f"CEL syntax error in {e.part}: {message}", file=p.smap.file, line=line, col=col,
                      hint="see docs/policy.md for the CEL this engine supports")


def _report(problems: list[Problem], what: str, source: str, smap: SourceMap, path: tuple[Hashable, ...],
            lines: list[str], diags: Diagnostics) -> None:
    vline, vcol = smap.locate(path)
    for problem in problems:
        line, col = expression_position(lines, vline, vcol, source, problem.offset)
        diags.add(Diagnostic(f"{what}: {problem.message}", file=smap.file, line=line, col=col,
                             hint=problem.hint or "`cloudsync policy schema` prints the input document"))


def _sample_problems(outcome: tuple[str, ...], what: str) -> list[Problem]:
    """What running on a fully populated sample showed: unknown functions, bad regexes, non-boolean results."""
    if outcome[0] == "error":
        text = outcome[2]
        if outcome[1] != "RuntimeError":
            return []  # data-dependent errors are judged at evaluation time
        undefined = _UNDEFINED.search(text)
        if undefined:
            return [Problem(f"unknown function or variable {undefined.group(1)!r}", 0,
                            "see docs/policy.md for the functions this engine supports")]
        if "not a valid regex" in text:
            return [Problem(f"invalid regular expression: {text.splitlines()[0]}", 0)]
        return []
    if outcome[0] == "value" and outcome[1] != "bool":
        return [Problem(f"{what} must be true or false, but it gives a {outcome[1]} value", 0,
                        "compare the value, e.g. size(x) > 0")]
    return []


def _offset(source: str, line: int, col: int) -> int:
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[:line - 1]) + max(col - 1, 0)


def expression_position(lines: list[str], vline: int, vcol: int, source: str, offset: int) -> tuple[int, int | None]:
    """Map an offset in an expression to ``line, col`` of the YAML file holding it."""
    before = source[:offset]
    eline = before.count("\n")
    ecol = offset - (before.rfind("\n") + 1)
    head = lines[vline - 1][vcol - 1:vcol] if 0 < vline <= len(lines) else ""
    if head in ("|", ">"):
        # A block scalar starts on the line after its indicator; folded ('>') lines are joined.
        target = vline + 1 + (eline if head == "|" else 0)
        first = lines[vline] if vline < len(lines) else ""
        indent = len(first) - len(first.lstrip(" "))  # the block's indentation, stripped from its text
        return target, indent + ecol + 1 if head == "|" else None
    if eline == 0:
        return vline, vcol + (1 if head in ("'", '"') else 0) + ecol
    return vline + eline, None


def pydantic_diagnostics(exc: ValidationError, data: Any, smap: SourceMap,
                         prefix: tuple[Hashable, ...]) -> list[Diagnostic]:
    """Pydantic errors as diagnostics at the offending key or value."""
    out: list[Diagnostic] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path: list[Hashable] = []
        node = data
        for part in loc:
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_dict or in_list:
                path.append(part)
                node = node[part]
        kind = error["type"]
        name = str(loc[-1]) if loc else "value"
        full = prefix + tuple(path)
        if kind == "extra_forbidden":
            out.append(smap.at(full, f"unknown key {name!r}", key=True,
                               hint="see docs/policy.md for the keys of policies, parameters and waivers"))
        elif kind == "missing":
            out.append(smap.at(full, f"missing required key {name!r}"))
        else:
            msg = str(error["msg"]).removeprefix("Value error, ")
            field_name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "value")
            out.append(smap.at(full, f"{field_name}: {msg[0].lower() + msg[1:] if msg else kind}"))
    return out

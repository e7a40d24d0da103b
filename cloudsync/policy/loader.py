"""Load policy files: YAML → validated policies and waivers, each CEL expression compiled once.

Every problem is a :class:`Diagnostic` at ``file:line`` and all of them are collected in
one run: bad YAML, unknown keys, CEL syntax errors, references to fields the input
document does not have, duplicate ids, waivers of unknown policies.
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
from typing import Any, Literal, TypeVar

import cel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cloudsync.config.files import read_yaml_text
from cloudsync.config.yamlsource import SourceMap, YamlError, load_yaml
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Diagnostics
from cloudsync.policy.document import TARGET_ROOTS, input_schema, params_schema, sample
from cloudsync.policy.model import Parameter, Policy, Waiver
from cloudsync.policy.references import Problem, check_references, references_roots

M = TypeVar("M", bound=BaseModel)
MESSAGE_FIELDS = frozenset({"secret", "target", "address"})


def builtin_dir() -> Path:
    """The built-in pack: ``cloudsync/_policies`` in a wheel, else the repository's ``policies/``."""
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
    description: str = ""


class PolicyModel(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    severity: Literal["error", "warning"]
    match: str | None = None
    rule: str = Field(min_length=1)
    message: str = Field(min_length=1)
    rationale: str = ""
    fix: str = ""
    parameters: dict[str, ParameterModel] = Field(default_factory=dict)


class WaiverModel(_Strict):
    policy: str
    secrets: list[str] = Field(min_length=1)
    targets: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    reason: str = Field(min_length=1)
    expires: date


class PolicyFileModel(_Strict):
    policies: list[PolicyModel] = Field(default_factory=list)
    waivers: list[WaiverModel] = Field(default_factory=list)


# --- compiled policies ---------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy with its match and rule compiled once, and the document roots they read."""

    policy: Policy
    rule: cel.Program
    match: cel.Program | None
    roots: frozenset[str]

    @property
    def per_target(self) -> bool:
        """False when the result depends on the secret only, so it is shared by its targets."""
        return bool(self.roots & TARGET_ROOTS)


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


def load_policies(dirs: Sequence[Path]) -> PolicySet:
    """Load every ``*.yaml`` of ``dirs``; raise CloudsyncError with every problem."""
    diags = Diagnostics()
    result = PolicySet()
    builtin = builtin_dir()
    for folder in dirs:
        if not folder.is_dir():
            diags.add(Diagnostic(f"policy folder {display_path(folder)} does not exist",
                                 hint="check --policy-dir and policy.dirs in cloudsync.yaml"))
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            _load_file(path, _same(folder, builtin), result, diags)
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


def _load_file(path: Path, builtin: bool, result: PolicySet, diags: Diagnostics) -> None:
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
        compiled = _compile(model, smap, where, lines, builtin, diags)
        if compiled is not None:
            result.policies[model.id] = compiled
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


def _compile(model: PolicyModel, smap: SourceMap, where: tuple[Hashable, ...], lines: list[str], builtin: bool,
             diags: Diagnostics) -> CompiledPolicy | None:
    params = [Parameter(name, p.default, p.description) for name, p in model.parameters.items()]
    policy = Policy(id=model.id, title=model.title, severity=model.severity, rule=model.rule, message=model.message,
                    match=model.match, rationale=model.rationale.strip(), fix=model.fix.strip(),
                    parameters=tuple(params), file=smap.file, line=smap.locate(where)[0], builtin=builtin)
    before = len(diags)
    for name in model.parameters:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
            diags.add(smap.at((*where, "parameters", name), f"invalid parameter name {name!r}", key=True,
                              hint="lowercase letters, digits and '_', starting with a letter"))
    _check_message(model, smap, where, diags)
    schema = input_schema(params_schema(policy.defaults))
    doc = sample(schema)
    doc["params"] = policy.defaults
    programs: dict[str, cel.Program] = {}
    for part in ("match", "rule"):
        source = getattr(model, part)
        if source is None:
            continue
        program = compile_expression(source, smap, (*where, part), lines, schema["properties"], doc, diags)
        if program is not None:
            programs[part] = program
    if len(diags) > before or "rule" not in programs:
        return None
    roots = references_roots(model.rule, schema["properties"]) | references_roots(model.match or "",
                                                                                   schema["properties"])
    return CompiledPolicy(policy, programs["rule"], programs.get("match"), roots)


def _check_message(model: PolicyModel, smap: SourceMap, where: tuple[Hashable, ...], diags: Diagnostics) -> None:
    allowed = MESSAGE_FIELDS | set(model.parameters)
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(model.message) if f is not None]
    except ValueError as exc:
        diags.add(smap.at((*where, "message"), f"bad message template: {exc}", hint="write '{{' for a brace"))
        return
    for name in names:
        if name not in allowed:
            diags.add(smap.at((*where, "message"), f"message names unknown placeholder {{{name}}}",
                              hint=f"placeholders: {', '.join('{' + a + '}' for a in sorted(allowed))}"))


_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): (.*)")
_UNDEFINED = re.compile(r"Undefined variable or function: '([^']*)'")


def compile_expression(source: str, smap: SourceMap, path: tuple[Hashable, ...], lines: list[str],
                       roots: dict[str, Any], doc: dict[str, Any], diags: Diagnostics) -> cel.Program | None:
    """Compile one expression and check what it references; diagnostics point into the file."""
    vline, vcol = smap.locate(path)
    what = str(path[-1])
    try:
        program = cel.compile(source)
    except ValueError as exc:
        text = str(exc)
        found = _CEL_ERROR.search(text)
        if found:
            eline, ecol = int(found.group(1)), int(found.group(2))
            offset = _offset(source, eline, ecol)
            line, col = expression_position(lines, vline, vcol, source, offset)
            message = found.group(3).strip()
        else:
            line, col, message = vline, vcol, text.splitlines()[0] if text else "invalid expression"
        diags.add(Diagnostic(f"CEL syntax error in {what}: {message}", file=smap.file, line=line, col=col,
                             hint="see docs/policy.md for the CEL this engine supports"))
        return None
    problems = check_references(source, roots) or _sample_problems(program, what, doc)
    for problem in problems:
        line, col = expression_position(lines, vline, vcol, source, problem.offset)
        diags.add(Diagnostic(f"{what}: {problem.message}", file=smap.file, line=line, col=col,
                             hint=problem.hint or "`cloudsync policy schema` prints the input document"))
    return None if problems else program


def _sample_problems(program: cel.Program, what: str, doc: dict[str, Any]) -> list[Problem]:
    """Evaluate on a fully populated sample: unknown functions and non-boolean results show up."""
    try:
        result = program.execute(cel.Context(doc))
    except RuntimeError as exc:
        text = str(exc)
        undefined = _UNDEFINED.search(text)
        if undefined:
            return [Problem(f"unknown function or variable {undefined.group(1)!r}", 0,
                            "see docs/policy.md for the functions this engine supports")]
        if "not a valid regex" in text:
            return [Problem(f"invalid regular expression: {text.splitlines()[0]}", 0)]
        return []
    except Exception:  # noqa: BLE001 - data-dependent errors are judged at evaluation time
        return []
    if not isinstance(result, bool):
        return [Problem(f"{what} must be true or false, but it gives a {type(result).__name__} value", 0,
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

"""Load a stack folder: ``cloudsync.yaml`` and ``secrets/*.yaml`` → validated models.

Every problem becomes a :class:`Diagnostic` at ``file:line:col``; all of them are collected
in one run (each secret is validated on its own, so one bad declaration hides nothing).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cloudsync.config import models
from cloudsync.config.checks import check_stack
from cloudsync.config.models import SecretDecl, SecretsFile, StackFile
from cloudsync.config.yamlsource import SourceMap, YamlError, load_yaml
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Diagnostics
from cloudsync.providers.registry import all_rules, kinds

M = TypeVar("M", bound=BaseModel)

STACK_FILE = "cloudsync.yaml"
SECRETS_DIR = "secrets"


@dataclass(frozen=True)
class Declaration:
    """A validated secret with the place it was declared."""

    decl: SecretDecl
    file: str
    line: int
    smap: SourceMap
    path: tuple[Hashable, ...]

    def at(self, *sub: Hashable, message: str, key: bool = False, hint: str | None = None) -> Diagnostic:
        return self.smap.at(self.path + sub, message, key=key, hint=hint)


@dataclass
class Stack:
    """A loaded, validated stack."""

    root: Path
    config: StackFile
    secrets: list[Declaration]
    smap: SourceMap
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.stack

    @functools.cached_property
    def by_name(self) -> dict[str, Declaration]:
        """The declarations by secret name (names are unique once the stack is loaded)."""
        return {d.decl.name: d for d in self.secrets}


def _display(path: Path) -> str:
    return str(path)


def load_stack(root: Path | str) -> Stack:
    """Load and validate the stack in ``root``; raise CloudsyncError with every problem."""
    root = Path(root)
    diags = Diagnostics()
    stack_path = root / STACK_FILE
    if not stack_path.is_file():
        raise CloudsyncError(Diagnostic(
            f"no {STACK_FILE} in {_display(root)}",
            hint="run cloudsync inside a stack folder or pass -C DIR",
        ))
    data, smap = _read_yaml(stack_path, diags)
    config: StackFile | None = None
    raw_secrets: list[tuple[Any, SourceMap, tuple[Hashable, ...]]] = []
    if data is not None:
        if not isinstance(data, dict):
            diags.add(smap.at((), f"{STACK_FILE} must be a mapping with version, stack, targets, ...",
                              hint="see `cloudsync schema`"))
        else:
            config = _validate(StackFile, data, smap, (), diags)
            secrets = data.get("secrets")
            if isinstance(secrets, list):
                raw_secrets += [(item, smap, ("secrets", i)) for i, item in enumerate(secrets)]
    elif not diags.has_errors:
        diags.add(smap.at((), f"{STACK_FILE} is empty", hint="see examples/quickstart/cloudsync.yaml"))

    secrets_dir = root / SECRETS_DIR
    if secrets_dir.is_dir():
        for path in sorted([*secrets_dir.glob("*.yaml"), *secrets_dir.glob("*.yml")]):
            if path.name.endswith((".enc.yaml", ".enc.yml", ".sops.yaml", ".sops.yml")):
                continue  # SOPS-encrypted value files live beside declarations
            fdata, fmap = _read_yaml(path, diags)
            if fdata is None:
                continue
            if not isinstance(fdata, dict):
                diags.add(fmap.at((), "a secrets file must be a mapping with a 'secrets' list"))
                continue
            if _validate(SecretsFile, fdata, fmap, (), diags) is not None:
                raw_secrets += [(item, fmap, ("secrets", i)) for i, item in enumerate(fdata["secrets"] or [])]

    declared: list[Declaration] = []
    for item, item_map, item_path in raw_secrets:
        if not isinstance(item, dict):
            diags.add(item_map.at(item_path, "a secret declaration must be a mapping with name, targets, value, ..."))
            continue
        decl = _validate(SecretDecl, item, item_map, item_path, diags)
        if decl is not None:
            line = item_map.locate(item_path)[0]
            declared.append(Declaration(decl, item_map.file, line, item_map, item_path))

    if config is None:
        raise CloudsyncError(diags.items)
    stack = Stack(root=root, config=config, secrets=declared, smap=smap)
    check_stack(stack, diags)
    if diags.has_errors:
        raise CloudsyncError(diags.items)
    stack.warnings = list(diags)
    return stack


def _read_yaml(path: Path, diags: Diagnostics) -> tuple[Any, SourceMap]:
    display = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        diags.add(Diagnostic(f"cannot read file: {exc.__class__.__name__}", file=display))
        return None, SourceMap(display)
    try:
        return load_yaml(text, display)
    except YamlError as exc:
        diags.extend(exc.diagnostics)
        return None, SourceMap(display)


def _validate(model: type[M], data: Any, smap: SourceMap, prefix: tuple[Hashable, ...],
                            diags: Diagnostics) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            diags.add(_diagnostic(error, data, smap, prefix))
        return None


def _vocabulary() -> list[str]:
    words: set[str] = set()
    target_models = [rules.config_model for rules in all_rules()]
    for obj in [*vars(models).values(), *target_models]:
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            for name, info in obj.model_fields.items():
                words.add(info.alias or name)
    return sorted(words)


def _data_path(data: Any, loc: Sequence[Hashable]) -> tuple[tuple[Hashable, ...], list[Hashable]]:
    """Follow ``loc`` through ``data``; skip pydantic's own loc parts (union tags, '[key]')."""
    path: list[Hashable] = []
    rest: list[Hashable] = []
    node = data
    for part in loc:
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not found:
            rest.append(part)
            continue
        node = node[part]
        path.append(part)
    return tuple(path), rest


def _diagnostic(error: Any, data: Any, smap: SourceMap, prefix: tuple[Hashable, ...]) -> Diagnostic:
    loc = tuple(error["loc"])
    kind = error["type"]
    found, rest = _data_path(data, loc)
    path = prefix + found
    field_name = next((str(p) for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "value")
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]

    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _vocabulary(), n=1, cutoff=0.6)
        return smap.at(path, f"unknown key {key!r}", key=True,
                       hint=f"did you mean {close[0]!r}?" if close else "see `cloudsync schema` for the keys allowed here")
    if kind == "missing":
        return smap.at(path, f"missing required key {str(loc[-1])!r}", hint=None)
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "")
        close = difflib.get_close_matches(str(tag), kinds(), n=1)
        return smap.at((*path, "provider"), f"unknown provider {tag!r}",
                       hint=f"did you mean {close[0]!r}?" if close else f"one of {', '.join(kinds())}")
    if kind == "union_tag_not_found":
        return smap.at(path, "a target needs 'provider'", hint=f"one of {', '.join(kinds())}")
    if "[key]" in rest:
        return smap.at(path, f"invalid name {loc[-2] if len(loc) > 1 else ''!r} in {field_name!r}: {msg.lower()}",
                       key=True)
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        shown = repr(error.get("input"))[:80]
        return smap.at(path, f"invalid {field_name} {shown}: must match {pattern}")
    if kind == "literal_error":
        shown = repr(error.get("input"))[:80]
        expected = error.get("ctx", {}).get("expected", "")
        return smap.at(path, f"invalid {field_name} {shown}: expected {expected}")
    if kind == "value_error" and not rest and field_name in {"value"} and "plaintext" in msg:
        return smap.at((*path, "value"), msg)
    text = msg[0].lower() + msg[1:] if msg else kind
    return smap.at(path, f"{field_name}: {text}" if not text.startswith(("invalid", "bad", "a ", "plaintext", "label", "'"))
                   else text)

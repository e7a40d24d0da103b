"""Load a stack folder: ``cloudsync.yaml`` and ``secrets/*.yaml`` → validated models.

Every problem becomes a :class:`Diagnostic` at ``file:line:col``; all of them are collected
in one run (each secret is validated on its own, so one bad declaration hides nothing).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cloudsync.config import models
from cloudsync.config.checks import check_stack
from cloudsync.config.files import FileScope, read_yaml_text
from cloudsync.config.limits import MAX_DIAGNOSTICS_PER_FILE, MAX_FILES, shown
from cloudsync.config.models import SecretDecl, SecretsFile, StackFile
from cloudsync.config.paths import check_paths, yaml_files
from cloudsync.config.yamlsource import SourceMap, YamlError, load_yaml
from cloudsync.diagnostics import CloudsyncError, Diagnostic, Diagnostics, Severity
from cloudsync.gc_pause import gc_paused
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
    scope: FileScope | None = None  # where its value files may be; None: the stack folder only

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
    scope: FileScope | None = None

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
    with gc_paused():
        return _load_stack(Path(root))


def _load_stack(root: Path) -> Stack:
    diags = _Capped()
    stack_path = root / STACK_FILE
    if not stack_path.is_file():
        raise CloudsyncError(Diagnostic(
            f"no {STACK_FILE} in {_display(root)}",
            hint="run cloudsync inside a stack folder or pass -C DIR",
        ))
    data, smap = _read_yaml(stack_path, diags, root)
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
        paths = [p for p in yaml_files(secrets_dir)
                 # SOPS-encrypted value files live beside declarations
                 if not p.name.endswith((".enc.yaml", ".enc.yml", ".sops.yaml", ".sops.yml"))]
        if len(paths) > MAX_FILES:
            diags.add(Diagnostic(f"more than {MAX_FILES} files in {_display(secrets_dir)}", file=_display(secrets_dir),
                                 hint="group declarations into fewer files"))
            paths = []
        for path in paths:
            fdata, fmap = _read_yaml(path, diags, root)
            if fdata is None:
                continue
            if not isinstance(fdata, dict):
                diags.add(fmap.at((), "a secrets file must be a mapping with a 'secrets' list"))
                continue
            if _validate(SecretsFile, fdata, fmap, (), diags) is not None:
                raw_secrets += [(item, fmap, ("secrets", i)) for i, item in enumerate(fdata["secrets"] or [])]

    scope = FileScope.of(root, config.files.allow) if config is not None else None
    declared: list[Declaration] = []
    for item, item_map, item_path in raw_secrets:
        if not isinstance(item, dict):
            diags.add(item_map.at(item_path, "a secret declaration must be a mapping with name, targets, value, ..."))
            continue
        decl = _validate(SecretDecl, item, item_map, item_path, diags)
        if decl is not None:
            line = item_map.locate(item_path)[0]
            declared.append(Declaration(decl, item_map.file, line, item_map, item_path, scope))

    if config is None:
        raise CloudsyncError(diags.reported())
    stack = Stack(root=root, config=config, secrets=declared, smap=smap, scope=scope)
    check_stack(stack, diags)
    check_paths(stack, diags)
    if diags.has_errors:
        raise CloudsyncError(diags.reported())
    stack.warnings = diags.reported()
    return stack


class _Capped(Diagnostics):
    """Diagnostics of one load, at most :data:`MAX_DIAGNOSTICS_PER_FILE` per file; the rest only counted.

    20,000 unknown keys are 20,000 problems: listing (and hinting) each would take seconds
    and bury the first, real one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.shown_per_file: dict[str | None, int] = {}
        self.hidden: dict[str | None, list[int]] = {}  # file -> [errors, warnings] not shown

    def room(self, file: str | None) -> bool:
        return self.shown_per_file.get(file, 0) < MAX_DIAGNOSTICS_PER_FILE

    def add(self, diag: Diagnostic) -> None:
        if self.room(diag.file):
            self.shown_per_file[diag.file] = self.shown_per_file.get(diag.file, 0) + 1
            self.items.append(diag)
        else:
            self.hide(diag.file, error=diag.severity is Severity.ERROR)

    def hide(self, file: str | None, *, error: bool) -> None:
        counts = self.hidden.setdefault(file, [0, 0])
        counts[0 if error else 1] += 1

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        for diag in diags:
            self.add(diag)

    @property
    def has_errors(self) -> bool:
        return super().has_errors or any(errors for errors, _ in self.hidden.values())

    def reported(self) -> list[Diagnostic]:
        """What the user sees: the shown problems, and per file how many more there are."""
        summary = [Diagnostic(f"{errors + warnings} more problems in this file are not shown",
                              Severity.ERROR if errors else Severity.WARNING, file=file,
                              hint="fix the ones above and run validate again")
                   for file, (errors, warnings) in self.hidden.items()]
        return [*self.items, *summary]


def _read_yaml(path: Path, diags: Diagnostics, within: Path | None = None) -> tuple[Any, SourceMap]:
    """Read and parse one YAML file that must resolve inside ``within`` (default: its own folder)."""
    display = _display(path)
    try:
        return load_yaml(read_yaml_text(path, display, within=within or path.parent), display)
    except YamlError as exc:
        diags.extend(exc.diagnostics)
        return None, SourceMap(display)


def _validate(model: type[M], data: Any, smap: SourceMap, prefix: tuple[Hashable, ...],
                            diags: Diagnostics) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        hidden = 0
        for i, error in enumerate(exc.errors(include_url=False)):
            # Past the cap, problems are counted, not rendered: the hints' fuzzy matching is what
            # made 20,000 unknown keys take 16 s.
            if isinstance(diags, _Capped) and not diags.room(smap.file):
                diags.hide(smap.file, error=True)
            elif not isinstance(diags, _Capped) and i >= MAX_DIAGNOSTICS_PER_FILE:
                hidden += 1
            else:
                diags.add(_diagnostic(error, data, smap, prefix))
        if hidden:
            diags.add(Diagnostic(f"{hidden} more problems in this file are not shown", file=smap.file,
                                 hint="fix the ones above and run validate again"))
        return None


@functools.cache
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
    # the last name in loc may be a key the user wrote (a target or principal name): bounded and escaped
    field_name = next((shown(p)[1:-1] for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "value")
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]

    if kind == "extra_forbidden":
        key = str(loc[-1])[:100]
        # The vocabulary is every model's keys: a key valid elsewhere (`secret` of public_key_of
        # written under `from`) must not be suggested as its own correction.
        if key in _vocabulary():
            key_hint = f"{key!r} is not a key of this mapping; see `cloudsync schema` for the keys allowed here"
        else:
            close = difflib.get_close_matches(key, _vocabulary(), n=1, cutoff=0.6)
            key_hint = f"did you mean {close[0]!r}?" if close else "see `cloudsync schema` for the keys allowed here"
        return smap.at(path, f"unknown key {shown(loc[-1])}", key=True, hint=key_hint)
    if kind == "missing":
        return smap.at(path, f"missing required key {str(loc[-1])!r}", hint=None)
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "")
        close = difflib.get_close_matches(str(tag)[:100], kinds(), n=1)
        return smap.at((*path, "provider"), f"unknown provider {shown(tag)}",
                       hint=f"did you mean {close[0]!r}?" if close else f"one of {', '.join(kinds())}")
    if kind == "union_tag_not_found":
        return smap.at(path, "a target needs 'provider'", hint=f"one of {', '.join(kinds())}")
    if "[key]" in rest:
        name = shown(loc[-2]) if len(loc) > 1 else "''"
        return smap.at(path, f"invalid name {name} in {field_name!r}: {msg.lower()}",
                       key=True)
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        return smap.at(path, f"invalid {field_name} {shown(error.get('input'))}: must match {pattern}")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return smap.at(path, f"invalid {field_name} {shown(error.get('input'))}: expected {expected}")
    hint = getattr(error.get("ctx", {}).get("error"), "hint", None)  # e.g. a DurationError's
    if kind == "value_error" and isinstance(hint, str):
        # named by the key the user wrote, not by a union tag pydantic adds to loc
        key_name = next((shown(p)[1:-1] for p in reversed(found) if isinstance(p, str)), field_name)
        return smap.at(path, f"{key_name}: {msg}", hint=hint)
    if kind == "value_error" and not rest and field_name in {"value"} and "plaintext" in msg:
        return smap.at((*path, "value"), msg)
    text = msg[0].lower() + msg[1:] if msg else kind
    return smap.at(path, f"{field_name}: {text}" if not text.startswith(("invalid", "bad", "a ", "plaintext", "label", "'"))
                   else text)

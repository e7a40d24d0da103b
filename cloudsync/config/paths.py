"""Every path a stack names stays where it may read, checked at ``validate`` on the files alone.

``value: {file: ../../etc/hostname}`` or a ``policies/`` folder that is a symlink to ``/``
is refused here, before a plan reads anything; the readers (:mod:`cloudsync.config.files`)
check again when they open the file, so a path that changes in between is refused too.
A path that does not exist yet passes: a value file may be written by an earlier job.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING

from cloudsync.config.fields import IS_PATH
from cloudsync.config.files import FORBIDDEN_DIRS, FileRefused, FileScope, path_text
from cloudsync.config.limits import MAX_FILE_BYTES, MAX_FILES, MAX_VALUE_FILE_BYTES
from cloudsync.diagnostics import Diagnostic, Diagnostics

if TYPE_CHECKING:
    from cloudsync.config.loader import Stack

POLICIES_DIR = "policies"


def yaml_files(folder: Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files of ``folder``, sorted; stops listing past :data:`MAX_FILES` + 1."""
    found: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith((".yaml", ".yml")):
                    found.append(folder / entry.name)
                    if len(found) > MAX_FILES:
                        break
    except OSError:  # unreadable or not a folder: nothing to load, as a glob would find
        return []
    return sorted(found)


def check_paths(stack: Stack, diags: Diagnostics) -> None:
    """Add a diagnostic for each path of the stack that leaves its scope or is not a plain file."""
    scope = stack.scope or FileScope.of(stack.root)
    config = stack.config
    for i, (entry, real) in enumerate(zip(config.files.allow, scope.allowed, strict=True)):
        if real == Path(real.anchor) or any(real.is_relative_to(d) for d in FORBIDDEN_DIRS):
            diags.add(stack.smap.at(("files", "allow", i), f"files.allow cannot name {path_text(entry)} "
                                    f"(resolves to {path_text(real)})",
                                    hint="name only the directory the pipeline mounts, e.g. /run/secrets"))
        elif real.exists() and not real.is_dir():
            diags.add(stack.smap.at(("files", "allow", i), f"files.allow entry {path_text(entry)} is not a directory"))

    # A provider's target model marks its path fields (the local store's `path`): each stays in scope,
    # without the core knowing which provider has one.
    for name, target in config.targets.items():
        for field_name, info in type(target).model_fields.items():
            value = getattr(target, field_name)
            if IS_PATH in info.metadata and isinstance(value, str):
                _check(stack, scope, value, ("targets", name, field_name), diags, what=field_name, limit=None)

    for decl in stack.secrets:
        spec = decl.decl.value
        if spec is None:
            continue
        if spec.file is not None:
            _check_at(decl.at("value", "file", message=""), scope, spec.file, diags, what="value file",
                      limit=MAX_VALUE_FILE_BYTES)
        if spec.sops is not None:
            _check_at(decl.at("value", "sops", message=""), scope, spec.sops, diags, what="sops file",
                      limit=MAX_FILE_BYTES)

    folders: list[tuple[str | Path, tuple[Hashable, ...], bool]] = [(POLICIES_DIR, (), False)]
    folders += [(d, ("policy", "dirs", i), True) for i, d in enumerate(config.policy.dirs)]
    for folder, where, outside in folders:
        _check_policy_folder(stack, scope, folder, where, outside, diags)


def _check_policy_folder(stack: Stack, scope: FileScope, folder: str | Path, where: tuple[Hashable, ...],
                         outside: bool, diags: Diagnostics) -> None:
    at = stack.smap.at(where, "") if where else Diagnostic("", file=str(stack.root / folder))
    try:
        real = scope.resolve(folder, outside=outside, what="policy folder")
    except FileRefused as exc:
        diags.add(_with(at, exc))
        return
    if not real.is_dir():
        return  # a missing policies/ is normal; a missing policy.dirs entry is reported by the policy loader
    paths = yaml_files(real)
    if len(paths) > MAX_FILES:
        diags.add(_with(at, FileRefused(f"more than {MAX_FILES} files in policy folder {path_text(folder)}",
                                        hint="group policies into fewer files")))
        return
    for path in paths:
        shown_as = str(stack.root / folder / path.name)
        try:
            scope.check(path, limit=MAX_FILE_BYTES, outside=outside, what="policy file")
        except FileRefused as exc:
            diags.add(Diagnostic(exc.message, file=shown_as, hint=exc.hint))


def _check(stack: Stack, scope: FileScope, path: str, where: tuple[Hashable, ...], diags: Diagnostics, *,
           what: str, limit: int | None) -> None:
    _check_at(stack.smap.at(where, ""), scope, path, diags, what=what, limit=limit)


def _check_at(at: Diagnostic, scope: FileScope, path: str, diags: Diagnostics, *, what: str,
              limit: int | None) -> None:
    try:
        scope.check(path, limit=limit, what=what)
    except FileRefused as exc:
        diags.add(_with(at, exc))


def _with(at: Diagnostic, exc: FileRefused) -> Diagnostic:
    return Diagnostic(exc.message, file=at.file, line=at.line, col=at.col, hint=exc.hint)

"""Whole-stack rules: references, duplicates and remote-name collisions."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from cloudsync.config.names import check_remote_name, collision_key, translate
from cloudsync.diagnostics import Diagnostics

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration, Stack


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"declared: {', '.join(sorted(choices)) or 'none'}"


def remote_name(decl: Declaration, target: str, provider: str) -> str:
    return decl.decl.names.get(target) or translate(decl.decl.name, provider)


def effective_readers(stack: Stack, decl: Declaration) -> list[str]:
    readers = decl.decl.readers
    return list(readers) if readers is not None else list(stack.config.defaults.readers)


def check_stack(stack: Stack, diags: Diagnostics) -> None:
    config = stack.config
    target_names = list(config.targets)
    principal_names = list(config.principals)

    for i, reader in enumerate(config.defaults.readers):
        if reader not in config.principals:
            diags.add(stack.smap.at(("defaults", "readers", i), f"unknown principal {reader!r}",
                                    hint=_suggest(reader, principal_names)))

    seen: dict[str, Declaration] = {}
    remote_seen: dict[tuple[str, str], tuple[Declaration, str]] = {}
    for decl in stack.secrets:
        d = decl.decl
        first = seen.get(d.name)
        if first is not None:
            diags.add(decl.at("name", message=f"secret {d.name!r} is declared twice (first at {first.file}:{first.line})",
                              hint="merge the two declarations or rename one"))
            continue
        seen[d.name] = decl

        targets_ok: list[str] = []
        for i, target in enumerate(d.targets):
            if target not in config.targets:
                diags.add(decl.at("targets", i, message=f"unknown target {target!r}",
                                  hint=_suggest(target, target_names)))
            elif target in targets_ok:
                diags.add(decl.at("targets", i, message=f"target {target!r} is listed twice"))
            else:
                targets_ok.append(target)

        for target in d.names:
            if target not in d.targets:
                diags.add(decl.at("names", target, key=True,
                                  message=f"name override for {target!r}, which is not one of this secret's targets",
                                  hint="add the target to 'targets' or remove the override"))

        readers = effective_readers(stack, decl)
        for i, reader in enumerate(readers):
            principal = config.principals.get(reader)
            where = ("readers", i) if d.readers is not None else ("name",)
            if principal is None:
                diags.add(decl.at(*where, message=f"unknown principal {reader!r}",
                                  hint=_suggest(reader, principal_names)))
                continue
            for target in targets_ok:
                provider = config.targets[target].provider
                if provider != "local" and getattr(principal, provider) is None:
                    diags.add(decl.at(*where, message=f"principal {reader!r} has no {provider} id, "
                                      f"but this secret lives in {provider} target {target!r}",
                                      hint=f"add '{provider}:' to principals.{reader}"))

        if d.value is not None and d.value.from_ is not None:
            source = d.value.from_.target
            if source not in config.targets:
                diags.add(decl.at("value", "from", "target", message=f"unknown target {source!r}",
                                  hint=_suggest(source, target_names)))

        for target in targets_ok:
            provider = config.targets[target].provider
            remote = remote_name(decl, target, provider)
            problem = check_remote_name(remote, provider)
            if problem:
                at: tuple[str, ...] = ("names", target) if target in d.names else ("name",)
                diags.add(decl.at(*at, message=f"{problem} (target {target!r})",
                                  hint=f"set names: {{{target}: <valid name>}} on this secret"))
                continue
            key = (target, collision_key(remote, provider))
            other = remote_seen.get(key)
            if other is not None:
                odecl, _oremote = other
                diags.add(decl.at("name", message=(
                    f"secrets {odecl.decl.name!r} ({odecl.file}:{odecl.line}) and {d.name!r} "
                    f"both map to remote name {remote!r} in target {target!r}"),
                    hint=f"rename one, or give one a names: {{{target}: ...}} override"))
            else:
                remote_seen[key] = (decl, remote)

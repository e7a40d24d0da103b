"""A stack's policy settings: which policies are turned off, and parameter overrides."""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudsync.config.models import PolicyConfig
from cloudsync.config.yamlsource import SourceMap
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.policy.loader import CompiledPolicy
from cloudsync.policy.params import check_value, declared_type
from cloudsync.safe_text import safe_text


@dataclass(frozen=True)
class EnabledPolicy:
    """A compiled policy with its parameters after the stack's overrides."""

    compiled: CompiledPolicy
    params: Mapping[str, Any]


def _hint(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{what}: {', '.join(sorted(choices)) or 'none'}"


def enabled_policies(policies: Mapping[str, CompiledPolicy], config: PolicyConfig,
                     smap: SourceMap | None = None, where: tuple[Hashable, ...] = ("policy",)) -> list[EnabledPolicy]:
    """Apply ``policy.disabled`` and ``policy.parameters``; unknown ids and names, and values
    of another type than a parameter declares, are errors at their line in ``smap`` (under ``where``)."""
    smap = smap or SourceMap("cloudsync.yaml")
    problems: list[Diagnostic] = []
    ids = list(policies)
    for i, pid in enumerate(config.disabled):
        if pid not in policies:
            problems.append(smap.at((*where, "disabled", i), f"policy.disabled names unknown policy {pid!r}",
                                    hint=_hint(pid, ids, "known policies")))
    overrides: dict[str, dict[str, Any]] = {}
    for pid, values in config.parameters.items():
        compiled = policies.get(pid)
        if compiled is None:
            problems.append(smap.at((*where, "parameters", pid), f"parameters for unknown policy {pid!r}",
                                    key=True, hint=_hint(pid, ids, "known policies")))
            continue
        overrides[pid] = {}
        defaults = compiled.policy.defaults
        for name, value in (values or {}).items():
            at = (*where, "parameters", pid, name)
            if name not in defaults:
                problems.append(smap.at(at, f"policy {pid} has no parameter {name!r}", key=True,
                                        hint=_hint(name, list(defaults), "its parameters")))
                continue
            declared, _ = declared_type(defaults[name])
            assert declared is not None, "the loader refuses defaults that declare no type"
            checked, problem = check_value(value, declared)
            if problem is not None:
                inside, what = problem
                problems.append(smap.at((*at, *inside), f"parameter {name!r} of {pid} {what}",
                                        hint=f"the default is {safe_text(defaults[name], 200)}"))
            else:
                overrides[pid][name] = checked
    if problems:
        raise CloudsyncError(problems)
    disabled = set(config.disabled)
    return [EnabledPolicy(c, {**c.policy.defaults, **overrides.get(pid, {})})
            for pid, c in sorted(policies.items()) if pid not in disabled]

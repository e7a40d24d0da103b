"""A stack's policy settings: which policies are turned off, and parameter overrides."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloudsync.config.models import PolicyConfig
from cloudsync.config.yamlsource import SourceMap
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.policy.document import json_type
from cloudsync.policy.loader import CompiledPolicy


@dataclass(frozen=True)
class EnabledPolicy:
    """A compiled policy with its parameters after the stack's overrides."""

    compiled: CompiledPolicy
    params: Mapping[str, Any]


def _hint(word: str, choices: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{what}: {', '.join(sorted(choices)) or 'none'}"


def _type_ok(value: Any, default: Any) -> bool:
    want, got = json_type(default), json_type(value)
    return want == got or (want == "number" and got == "integer")


def enabled_policies(policies: Mapping[str, CompiledPolicy], config: PolicyConfig,
                     smap: SourceMap | None = None) -> list[EnabledPolicy]:
    """Apply ``policy.disabled`` and ``policy.parameters``; unknown ids and names are errors."""
    smap = smap or SourceMap("cloudsync.yaml")
    problems: list[Diagnostic] = []
    ids = list(policies)
    for i, pid in enumerate(config.disabled):
        if pid not in policies:
            problems.append(smap.at(("policy", "disabled", i), f"policy.disabled names unknown policy {pid!r}",
                                    hint=_hint(pid, ids, "known policies")))
    for pid, values in config.parameters.items():
        compiled = policies.get(pid)
        if compiled is None:
            problems.append(smap.at(("policy", "parameters", pid), f"parameters for unknown policy {pid!r}",
                                    key=True, hint=_hint(pid, ids, "known policies")))
            continue
        defaults = compiled.policy.defaults
        for name, value in (values or {}).items():
            where = ("policy", "parameters", pid, name)
            if name not in defaults:
                problems.append(smap.at(where, f"policy {pid} has no parameter {name!r}", key=True,
                                        hint=_hint(name, list(defaults), "its parameters")))
            elif not _type_ok(value, defaults[name]):
                problems.append(smap.at(where, f"parameter {name!r} of {pid} must be a {json_type(defaults[name])}, "
                                        f"got {json_type(value)}", hint=f"the default is {defaults[name]!r}"))
    if problems:
        raise CloudsyncError(problems)
    disabled = set(config.disabled)
    return [EnabledPolicy(c, {**c.policy.defaults, **(config.parameters.get(pid) or {})})
            for pid, c in sorted(policies.items()) if pid not in disabled]

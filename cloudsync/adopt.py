"""``cloudsync import``: declarations for the unowned secrets of a target (no values).

An existing estate is adopted without recreating anything: the declarations written here
carry no value source (so cloudsync neither reads nor rewrites values) and, with
``--adopt``, ``adopt: true``, which lets the next apply add the ownership labels.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from cloudsync.config.checks import remote_name
from cloudsync.config.fields import LABEL_KEY_RE, LABEL_VALUE_RE, RESERVED_LABEL_PREFIXES
from cloudsync.config.loader import Stack
from cloudsync.config.models import SECRET_NAME_RE
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.plan.build import Session
from cloudsync.providers.base import ProviderError, ReadQuery, RemoteSecret, is_reserved
from cloudsync.providers.registry import rules_for
from cloudsync.providers.rules import ProviderRules


@dataclass
class Imported:
    """What import found: declarations, new principals, and what it could not carry over."""

    secrets: list[dict[str, Any]] = field(default_factory=list)
    principals: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self, header: str) -> str:
        text = yaml.safe_dump({"secrets": self.secrets}, sort_keys=False, default_flow_style=None, width=120)
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        lines += [f"# note: {note}" for note in self.notes]
        if self.principals:
            lines.append("# Readers not matching a declared principal; add these to cloudsync.yaml:")
            snippet = yaml.safe_dump({"principals": self.principals}, sort_keys=False, width=120)
            lines += [f"#   {line}" for line in snippet.splitlines()]
        return "\n".join(lines) + "\n" + text


def _principal_names(stack: Stack, rules: ProviderRules) -> dict[str, str]:
    """Declared principals by their id in this cloud, so found readers map back to names."""
    names = {}
    for name, principal in stack.config.principals.items():
        ident = rules.principal_id(principal, name)
        if ident:
            names[ident] = name
    return names


def import_target(stack: Stack, session: Session, target: str, *, prefix: str | None, adopt: bool) -> Imported:
    provider = session.provider(target)
    kind = provider.kind
    declared = {remote_name(d, target, kind) for d in stack.secrets if target in d.decl.targets}
    try:
        listing = provider.read(ReadQuery(stack=stack.name, declared=frozenset(declared), access=frozenset(),
                                          metadata_only=True))
        candidates = [s for s in listing if _candidate(s, declared, prefix)]
        if candidates:  # a second, targeted read for the readers of what will be imported
            wanted = frozenset(s.name for s in candidates)
            again = provider.read(ReadQuery(stack=stack.name, declared=wanted, access=wanted, metadata_only=True))
            by_name = {s.name: s for s in again}
            candidates = [by_name.get(s.name, s) for s in candidates]
    except ProviderError as exc:
        raise CloudsyncError(session.failure(target, exc, "listing secrets")) from None

    result = Imported()
    rules = rules_for(kind)
    known = _principal_names(stack, rules)
    taken = {d.decl.name for d in stack.secrets}
    for secret in sorted(candidates, key=lambda s: s.name):
        entry = _declaration(secret, target, rules, known, result, taken)
        if entry is not None:
            if adopt:
                entry["adopt"] = True
            result.secrets.append(entry)
            taken.add(entry["name"])
    return result


def _candidate(secret: RemoteSecret, declared: set[str], prefix: str | None) -> bool:
    if secret.managed or secret.deleted or is_reserved(secret.name) or secret.name in declared:
        return False
    return prefix is None or secret.name.startswith(prefix)


def _declaration(secret: RemoteSecret, target: str, rules: ProviderRules, known: dict[str, str], result: Imported,
                 taken: set[str]) -> dict[str, Any] | None:
    name = rules.logical_name(secret.name)
    if not SECRET_NAME_RE.match(name) or len(name) > 255:
        name = re.sub(r"[^A-Za-z0-9_./-]", "-", name).strip("/.-_") or "imported"
    if name in taken:
        result.notes.append(f"{target}:{secret.name} skipped: the name {name!r} is already declared")
        return None
    entry: dict[str, Any] = {"name": name}
    if secret.description:
        entry["description"] = secret.description
    entry["targets"] = [target]
    labels, dropped = _labels(secret.labels)
    if labels:
        entry["labels"] = labels
    if dropped:
        result.notes.append(f"{target}:{secret.name}: tags not valid as labels everywhere, not imported "
                            f"(an adopting apply removes them): {', '.join(sorted(dropped))}")
    readers = sorted(secret.readers or ())
    if readers:
        entry["readers"] = [_reader_name(ident, target, rules.kind, known, result) for ident in readers]
    if rules.remote_name(name) != secret.name:
        entry["names"] = {target: secret.name}
    if secret.other_access:
        result.notes.append(f"{target}:{secret.name}: other grants found and left as they are: "
                            f"{', '.join(secret.other_access)}")
    return entry


def _labels(tags: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    labels: dict[str, str] = {}
    dropped: list[str] = []
    for key, value in tags.items():
        if LABEL_KEY_RE.match(key) and LABEL_VALUE_RE.match(value) and not key.startswith(RESERVED_LABEL_PREFIXES):
            labels[key] = value
        else:
            dropped.append(key)
    return labels, dropped


def _reader_name(ident: str, target: str, kind: str, known: dict[str, str], result: Imported) -> str:
    if ident in known:
        return known[ident]
    name = f"imported-{target}-{len(result.principals) + 1}"[:63]
    result.principals[name] = {kind: ident}
    known[ident] = name
    return name


def header(stack: Stack, target: str, count: int, adopt: bool, today: str) -> str:
    lines = [
        f"Imported by `cloudsync import --target {target}` on {today}: {count} unowned secrets.",
        "No value was read: these declarations have no value source, so cloudsync manages their",
        "labels, description and readers only. Add a `value:` to a declaration to manage its value.",
    ]
    if adopt:
        lines.append("`adopt: true` lets the next apply take ownership by adding cloudsync's labels,")
        lines.append("without recreating or rewriting anything.")
    else:
        lines.append("Run with --adopt (or add `adopt: true`) to let the next apply take ownership.")
    return "\n".join(lines)


def unknown_target(stack: Stack, target: str) -> Diagnostic:
    return Diagnostic(f"unknown target {target!r}", hint=f"declared: {', '.join(stack.config.targets)}")

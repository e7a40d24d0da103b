"""Which declarations read the value of which others, and cycles among them.

A declaration depends on another of the same stack when its value is derived from that
one's: ``from`` one of its targets, ``public_key_of`` it, or a certificate signed by it
(``generate: {type: certificate, ca: …}``). Cycles are validation errors; a dependency
that is not written yet (the first apply) leaves the dependent's value unknown until it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration


def dependencies(decl: Declaration, declared: Mapping[str, Declaration]) -> list[tuple[str, tuple[str, ...]]]:
    """The declared secrets ``decl``'s value reads, each with the path of the key that says so."""
    spec = decl.decl.value
    if spec is None:
        return []
    found: list[tuple[str, tuple[str, ...]]] = []
    if spec.from_ is not None:
        other = declared.get(spec.from_.name)
        if other is not None and spec.from_.target in other.decl.targets:
            found.append((spec.from_.name, ("value", "from")))
    if spec.public_key_of is not None and spec.public_key_of.secret in declared:
        found.append((spec.public_key_of.secret, ("value", "public_key_of")))
    ca = spec.generate.ca if spec.generate is not None and spec.generate.type == "certificate" else None
    if ca is not None and ca in declared:
        found.append((ca, ("value", "generate", "ca")))
    return found


def find_cycles(declared: Mapping[str, Declaration]) -> list[list[str]]:
    """Every dependency cycle once, each as the names along it (starting at the smallest)."""
    graph = {name: [dep for dep, _ in dependencies(decl, declared)] for name, decl in declared.items()}
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []
    # A module-level visitor, not a closure: a closure that calls itself is a reference
    # cycle, and it kept the whole graph alive until the next full garbage collection.
    for name in sorted(graph):
        if name not in state:
            _visit(name, graph, state, path, seen, cycles)
    return cycles


def _visit(name: str, graph: Mapping[str, list[str]], state: dict[str, int], path: list[str],
           seen: set[tuple[str, ...]], cycles: list[list[str]]) -> None:
    state[name] = 1
    path.append(name)
    for dep in graph.get(name, []):
        if state.get(dep) == 1:
            cycle = path[path.index(dep):]
            start = cycle.index(min(cycle))
            canonical = tuple(cycle[start:] + cycle[:start])
            if canonical not in seen:
                seen.add(canonical)
                cycles.append(list(canonical))
        elif dep not in state:
            _visit(dep, graph, state, path, seen, cycles)
    path.pop()
    state[name] = 2

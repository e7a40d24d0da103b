"""YAML to plain data, with a side table of source positions.

Positions never go into the user's data (no injected keys): the :class:`SourceMap` maps a
path of keys and indices to the ``line:col`` of the key and of the value.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from cloudsync.diagnostics import Diagnostic

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

Path_ = tuple[Hashable, ...]


@dataclass
class SourceMap:
    """Where each key and value of one file stands (1-based line and column)."""

    file: str
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[Hashable], *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of ``path`` (the key itself when ``key``)."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)

    def at(self, path: Sequence[Hashable], message: str, *, key: bool = False, hint: str | None = None) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(message, file=self.file, line=line, col=col, hint=hint)


class YamlError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(d.render() for d in diagnostics))


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; raise :class:`YamlError` with positions on any problem."""
    smap = SourceMap(file)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError([Diagnostic(f"YAML syntax error: {problem}", file=file, line=line, col=col,
                                    hint="check indentation and quoting on this line")]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Diagnostic(f"YAML error: {exc}", file=file, line=1, col=1)]) from None
    finally:
        loader.dispose()
    if node is None:
        return None, smap
    problems: list[Diagnostic] = []
    data = _convert(node, (), smap, loader, problems)
    if problems:
        raise YamlError(problems)
    return data, smap


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: yaml.Node, path: Path_, smap: SourceMap, loader: Any, problems: list[Diagnostic]) -> Any:
    smap.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _pos(key_node)
                problems.append(Diagnostic("mapping keys must be plain scalars", file=smap.file, line=line, col=col))
                continue
            key = loader.construct_object(key_node)
            if key in result:
                line, col = _pos(key_node)
                first = smap.keys.get(path + (key,), (0, 0))[0]
                problems.append(Diagnostic(f"duplicate key {key!r} (first at line {first})",
                                           file=smap.file, line=line, col=col,
                                           hint="remove one of the two entries"))
                continue
            smap.keys[path + (key,)] = _pos(key_node)
            result[key] = _convert(value_node, path + (key,), smap, loader, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), smap, loader, problems) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        line, col = _pos(node)
        problems.append(Diagnostic(f"cannot read value: {exc}", file=smap.file, line=line, col=col))
        return None

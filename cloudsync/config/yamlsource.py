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
    """Parse one YAML document; raise :class:`YamlError` with positions on any problem.

    Built from the parser's events rather than a composed node graph: three times faster
    on large stacks, and positions come for free.
    """
    smap = SourceMap(file)
    problems: list[Diagnostic] = []
    builder = _Builder(smap, problems)
    try:
        for event in yaml.parse(text, Loader=_Loader):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            problem += f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise YamlError([Diagnostic(f"YAML syntax error: {problem}", file=file, line=line, col=col,
                                    hint="check indentation and quoting on this line")]) from None
    except yaml.YAMLError as exc:
        raise YamlError([Diagnostic(f"YAML error: {exc.__class__.__name__}", file=file, line=1, col=1)]) from None
    if builder.documents > 1:
        problems.append(Diagnostic("expected one YAML document, found several", file=file, line=1, col=1,
                                   hint="remove the extra '---' separators"))
    if problems:
        raise YamlError(problems)
    return builder.root, smap


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


class _Builder:
    """Turns parser events into plain data, recording positions in the source map."""

    def __init__(self, smap: SourceMap, problems: list[Diagnostic]) -> None:
        self.smap = smap
        self.problems = problems
        self.root: Any = None
        self.documents = 0
        # open containers: [container, its path, pending mapping key or _NO_KEY]
        self.stack: list[list[Any]] = []
        self.anchors: dict[str, Any] = {}

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            self._add(event, self._scalar(event), container=False)
        elif kind is yaml.MappingStartEvent:
            self._add(event, {}, container=True)
        elif kind is yaml.SequenceStartEvent:
            self._add(event, [], container=True)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self.stack.pop()
        elif kind is yaml.AliasEvent:
            if event.anchor not in self.anchors:
                self._problem(event, f"unknown alias *{event.anchor}")
                return
            self._add(event, self.anchors[event.anchor], container=False, alias=True)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1

    def _scalar(self, event: Any) -> Any:
        value = event.value
        if event.tag in (None, "!") and not event.implicit[0]:
            return value  # quoted: always a string
        tag = event.tag if event.tag not in (None, "!") else _RESOLVER.resolve(yaml.ScalarNode, value, event.implicit)  # type: ignore[no-untyped-call]
        if tag in (_STR_TAG, _MERGE_TAG):
            return value  # merge keys are not supported: '<<' is reported as an unknown key
        try:
            return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, value, event.start_mark, event.end_mark))
        except (yaml.YAMLError, ValueError, TypeError):
            self._problem(event, f"cannot read value as {tag.rsplit(':', 1)[-1]}")
            return value

    def _problem(self, event: Any, message: str, hint: str | None = None) -> None:
        mark = event.start_mark
        self.problems.append(Diagnostic(message, file=self.smap.file, line=mark.line + 1, col=mark.column + 1,
                                        hint=hint))

    def _add(self, event: Any, item: Any, *, container: bool, alias: bool = False) -> None:
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        if not self.stack:
            self.root = item
            path: Path_ = ()
        else:
            frame = self.stack[-1]
            parent, parent_path, key = frame
            if type(parent) is dict:
                if key is _NO_KEY:
                    self._key(event, frame, item, pos, container)
                    return
                frame[2] = _NO_KEY
                if isinstance(key, _Duplicate):
                    path = (*parent_path, f"<duplicate {key.key}>")
                else:
                    parent[key] = item
                    path = (*parent_path, key)
            else:
                path = (*parent_path, len(parent))
                parent.append(item)
        self.smap.values.setdefault(path, pos)
        anchor = getattr(event, "anchor", None)
        if anchor and not alias:
            self.anchors[anchor] = item
        if container:
            self.stack.append([item, path, _NO_KEY])

    def _key(self, event: Any, frame: list[Any], item: Any, pos: tuple[int, int], container: bool) -> None:
        parent, parent_path, _ = frame
        if container or isinstance(item, dict | list):
            self._problem(event, "mapping keys must be plain scalars")
            frame[2] = _Duplicate("<complex key>")
            if container:  # swallow the key's own content; its end event pops this frame
                self.stack.append([item, ("<complex key>",), _NO_KEY])
            return
        if item in parent:
            first = self.smap.keys.get((*parent_path, item), (0, 0))[0]
            self._problem(event, f"duplicate key {item!r} (first at line {first})",
                          hint="remove one of the two entries")
            frame[2] = _Duplicate(item)
            return
        frame[2] = item
        self.smap.keys[(*parent_path, item)] = pos


class _Duplicate:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


_NO_KEY: Any = object()

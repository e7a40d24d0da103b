"""YAML to plain data, with a side table of source positions.

Positions never go into the user's data (no injected keys): the :class:`SourceMap` maps a
path of keys and indices to the ``line:col`` of the key and of the value.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from cloudsync.config.limits import (
    INT_RANGE,
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_DIAGNOSTICS_PER_FILE,
    MAX_FILE_BYTES,
    MAX_MAPPING_KEYS,
    MAX_SCALAR_CHARS,
    shown,
)
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
    # Positions packed into one int each (``line << 32 | col``; files are bounded far below 4 GiB): a stack of 10,000 secrets has ~160,000
    # of them, and a (line, col) tuple costs three objects where an int costs one.
    values: dict[Path_, int] = field(default_factory=dict)
    keys: dict[Path_, int] = field(default_factory=dict)

    def locate(self, path: Sequence[Hashable], *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of ``path`` (the key itself when ``key``)."""
        path = tuple(path)
        if key and path in self.keys:
            return _unpack(self.keys[path])
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefix in self.values:
                return _unpack(self.values[prefix])
        return (1, 1)

    def at(self, path: Sequence[Hashable], message: str, *, key: bool = False, hint: str | None = None) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(message, file=self.file, line=line, col=col, hint=hint)


def _unpack(pos: int) -> tuple[int, int]:
    return pos >> 32, pos & 0xFFFFFFFF


class YamlError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(d.render() for d in diagnostics))


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; raise :class:`YamlError` with positions on any problem.

    Built from the parser's events rather than a composed node graph: three times faster
    on large stacks, and positions come for free. The same pass holds the file to the
    bounds of :mod:`cloudsync.config.limits` (depth, alias expansion, keys per mapping) and
    stops at the first one crossed, so an alias bomb costs microseconds, not memory.
    """
    smap = SourceMap(file)
    problems: list[Diagnostic] = []
    builder = _Builder(smap, problems)
    _run(text, file, builder)
    if builder.documents > 1:
        problems.append(Diagnostic("expected one YAML document, found several", file=file, line=1, col=1,
                                   hint="remove the extra '---' separators"))
    if problems:
        raise YamlError(capped(problems, file))
    return builder.root, smap


def check_limits(text: str, file: str) -> None:
    """Hold a YAML file that another reader will parse to the same bounds; raise :class:`YamlError`.

    For files cloudsync does not read as stack data (SOPS files follow YAML 1.2, see
    :mod:`cloudsync.values.sopsfile`): only the bounds count here, not tags or duplicates.
    """
    _run(text, file, _Builder(SourceMap(file), []))


def _run(text: str, file: str, builder: _Builder) -> None:
    if len(text) > MAX_FILE_BYTES:
        raise YamlError([Diagnostic(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", file=file,
                                    line=1, col=1, hint="split the declarations across secrets/*.yaml")])
    # The parser's own loop, not yaml.parse(): that generator asks check_event() then
    # get_event() for each of the ~30 events per declaration.
    parser = _Loader(text)
    feed = builder.feed
    try:
        event = parser.get_event()
        while event is not None:
            feed(event)
            event = parser.get_event()
    except _Refused as exc:
        raise YamlError([*capped(builder.problems, file), exc.diagnostic]) from None
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
    finally:
        parser.dispose()


def capped(problems: list[Diagnostic], file: str) -> list[Diagnostic]:
    """At most :data:`MAX_DIAGNOSTICS_PER_FILE` problems of one file, and how many more there are."""
    if len(problems) <= MAX_DIAGNOSTICS_PER_FILE:
        return problems
    rest = len(problems) - MAX_DIAGNOSTICS_PER_FILE
    return [*problems[:MAX_DIAGNOSTICS_PER_FILE],
            Diagnostic(f"{rest} more problems in this file are not shown", file=file,
                       hint="fix the ones above and run validate again")]


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
# The tags of plain YAML data. Anything else (!!python/..., !!binary, !!set, !Ref, ...) would be
# silently read as something the author did not mean, so it is refused.
_SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_TAG_HINT = "cloudsync reads plain YAML data: remove the tag"


class _Refused(Exception):
    """A bound was crossed: stop reading the file at once (what follows may be a bomb)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Frame:
    """An open mapping or sequence: where it is, and how big it has grown (aliases expanded)."""

    __slots__ = ("anchor", "container", "height", "key", "keys", "nodes", "path")

    def __init__(self, container: Any, path: Path_, anchor: str | None) -> None:
        self.container = container
        self.path = path
        self.key: Any = _NO_KEY  # a mapping's pending key
        self.anchor = anchor
        self.nodes = 1  # itself and everything in it, counting what aliases reach
        self.height = 1  # nesting below and including itself
        self.keys = 0


class _Builder:
    """Turns parser events into plain data, recording positions in the source map."""

    def __init__(self, smap: SourceMap, problems: list[Diagnostic]) -> None:
        self.smap = smap
        self.problems = problems
        self.root: Any = None
        self.documents = 0
        self.stack: list[_Frame] = []
        # complete anchored nodes: name -> (data, nodes, height)
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.aliased = 0  # nodes reached through aliases so far
        self.resolved: dict[str, str] = {}  # plain scalar text -> its implicit tag (bounded by the file's size)
        self.constructed: dict[tuple[str, str], Any] = {}  # (tag, text) -> the value read from it
        self.plain: dict[str, Any] = {}  # untagged plain scalar text read without a problem -> its value

    def feed(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if self.stack and event.anchor is None:
                self._plain_scalar(event)
            else:
                self._add(event, self._scalar(event), nodes=1, height=0)
        elif kind is yaml.MappingStartEvent:
            self._open(event, {}, _MAP_TAG)
        elif kind is yaml.SequenceStartEvent:
            self._open(event, [], _SEQ_TAG)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self._close()
        elif kind is yaml.AliasEvent:
            self._alias(event)
        elif kind is yaml.DocumentStartEvent:
            self.documents += 1

    def _plain_scalar(self, event: Any) -> None:
        """:meth:`_add` of a scalar without an anchor inside a container, inlined: most events are these."""
        if event.tag is None and event.implicit[0]:
            # A stack repeats the same words (keys, target names, label values) thousands of
            # times: a text read once without a problem reads the same again.
            value = self.plain.get(event.value, _NO_KEY)
            if value is _NO_KEY:
                problems = len(self.problems)
                value = self._scalar(event)
                if len(self.problems) == problems:
                    self.plain[event.value] = value
        else:
            value = self._scalar(event)
        frame = self.stack[-1]
        mark = event.start_mark
        pos = (mark.line + 1) << 32 | (mark.column + 1)  # packed, see SourceMap
        if frame.key is _NO_KEY and type(frame.container) is dict:
            self._key(event, frame, value, pos, False, None)
            return
        self.smap.values.setdefault(_place(frame, value), pos)
        frame.nodes += 1  # _grow(1, 0)
        if frame.height < 1:
            frame.height = 1

    def _open(self, event: Any, item: Any, standard_tag: str) -> None:
        if event.tag not in (None, "!", standard_tag):
            self._problem(event, f"unknown tag {_tag_name(event.tag)}", hint=_TAG_HINT)
        if len(self.stack) >= MAX_DEPTH:
            self._refuse(event, f"nesting deeper than {MAX_DEPTH} levels",
                         hint="a stack needs a handful of levels; flatten this structure")
        self._add(event, item, nodes=1, height=1, container=True)

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.container, frame.nodes, frame.height)
        self._grow(frame.nodes, frame.height)

    def _grow(self, nodes: int, height: int) -> None:
        if self.stack:
            parent = self.stack[-1]
            parent.nodes += nodes
            if parent.height <= height:
                parent.height = height + 1

    def _alias(self, event: Any) -> None:
        name = event.anchor
        if name not in self.anchors and any(frame.anchor == name for frame in self.stack):
            self._refuse(event, f"alias *{_short(name)} refers to a node that contains it (a recursive alias)",
                         hint="an alias must name a node that is complete before it")
        found = self.anchors.get(name)
        if found is None:
            self._problem(event, f"unknown alias *{_short(name)}")
            return
        item, nodes, height = found
        self.aliased += nodes
        if self.aliased > MAX_ALIAS_NODES:
            self._refuse(event, f"aliases in this file expand to more than {MAX_ALIAS_NODES:,} nodes",
                         hint="write the data out, or alias smaller pieces")
        if len(self.stack) + height > MAX_DEPTH:
            self._refuse(event, f"alias *{_short(name)} nests deeper than {MAX_DEPTH} levels",
                         hint="a stack needs a handful of levels; flatten this structure")
        self._add(event, item, nodes=nodes, height=height, alias=True)

    def _scalar(self, event: Any) -> Any:
        value = event.value
        if len(value) > MAX_SCALAR_CHARS:
            self._problem(event, f"a value longer than {MAX_SCALAR_CHARS // 1024} KiB",
                          hint="stack files hold names and settings, not data")
            return ""
        if "\0" in value:
            self._problem(event, "a NUL character in a value", hint="remove the \\0 escape")
            return value
        if event.tag in (None, "!") and not event.implicit[0]:
            return value  # quoted: always a string
        if event.tag not in (None, "!") and event.tag not in _SCALAR_TAGS:
            self._problem(event, f"unknown tag {_tag_name(event.tag)}", hint=_TAG_HINT)
            return value
        tag = event.tag if event.tag not in (None, "!") else self._implicit_tag(value, event.implicit)
        if tag in (_STR_TAG, _MERGE_TAG):
            return value  # merge keys are not supported: '<<' is reported as an unknown key
        known = self.constructed.get((tag, value), _NO_KEY)
        if known is not _NO_KEY:
            return known
        try:
            result = _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, value, event.start_mark, event.end_mark))
        # PyYAML's constructors fail on odd text in many ways (`!!bool maybe` is a KeyError,
        # an empty `!!int` an IndexError): each is the same problem for the user.
        except (yaml.YAMLError, ArithmeticError, LookupError, ValueError, TypeError):
            self._problem(event, f"cannot read {shown(value)} as {_tag_name(tag)}")
            return value
        if type(result) is int and not INT_RANGE[0] <= result <= INT_RANGE[1]:
            self._problem(event, "integer out of range", hint="integers in stack files are 64-bit")
            return value
        # Numbers, booleans, null and dates are immutable: one object serves every repeat.
        self.constructed[(tag, value)] = result
        return result

    def _implicit_tag(self, value: str, implicit: tuple[bool, bool]) -> str:
        """The tag YAML's resolver gives a plain scalar, remembered per text: a stack repeats
        the same words (target names, label values) thousands of times."""
        if implicit[0]:
            tag = self.resolved.get(value)
            if tag is None:
                tag = self.resolved[value] = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
            return tag
        return _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call,no-any-return]

    def _problem(self, event: Any, message: str, hint: str | None = None) -> None:
        mark = event.start_mark
        self.problems.append(Diagnostic(message, file=self.smap.file, line=mark.line + 1, col=mark.column + 1,
                                        hint=hint))

    def _refuse(self, event: Any, message: str, hint: str) -> None:
        mark = event.start_mark
        raise _Refused(Diagnostic(message, file=self.smap.file, line=mark.line + 1, col=mark.column + 1, hint=hint))

    def _add(self, event: Any, item: Any, *, nodes: int, height: int, container: bool = False,
             alias: bool = False) -> None:
        mark = event.start_mark
        pos = (mark.line + 1) << 32 | (mark.column + 1)  # packed, see SourceMap
        anchor = None if alias else getattr(event, "anchor", None)
        if not self.stack:
            self.root = item
            path: Path_ = ()
        else:
            frame = self.stack[-1]
            if frame.key is _NO_KEY and type(frame.container) is dict:
                self._key(event, frame, item, pos, container, anchor)
                return
            path = _place(frame, item)
        self.smap.values.setdefault(path, pos)
        self._enter(item, path, anchor, nodes, height, container)

    def _enter(self, item: Any, path: Path_, anchor: str | None, nodes: int, height: int, container: bool) -> None:
        if container:
            # An anchor on a container is usable once the container is complete (see _close);
            # until then the name means this open container, so an alias of it is recursive.
            if anchor:
                self.anchors.pop(anchor, None)
            self.stack.append(_Frame(item, path, anchor))
            return
        if anchor:
            self.anchors[anchor] = (item, nodes, height)
        self._grow(nodes, height)

    def _key(self, event: Any, frame: _Frame, item: Any, pos: int, container: bool,
             anchor: str | None) -> None:
        frame.keys += 1
        if frame.keys > MAX_MAPPING_KEYS:
            self._refuse(event, f"more than {MAX_MAPPING_KEYS:,} keys in one mapping",
                         hint="a stack needs far fewer; split it, or check the file was not generated by mistake")
        if container or isinstance(item, dict | list):
            self._problem(event, "mapping keys must be plain scalars")
            frame.key = _Duplicate("<complex key>")
            # the key's own content is built aside; its end event pops this frame
            self._enter(item, ("<complex key>",), anchor, 1, 1 if container else 0, container)
            return
        self._enter(item, (), anchor, 1, 0, False)
        if item in frame.container:
            first = _unpack(self.smap.keys.get((*frame.path, item), 0))[0]
            self._problem(event, f"duplicate key {shown(item)} (first at line {first})",
                          hint="remove one of the two entries")
            frame.key = _Duplicate(item)
            return
        frame.key = item
        self.smap.keys[(*frame.path, item)] = pos


def _place(frame: _Frame, item: Any) -> Path_:
    """Put ``item`` in the open container (under its pending key, in a mapping); the path it gets."""
    parent = frame.container
    if type(parent) is dict:
        key, frame.key = frame.key, _NO_KEY
        if isinstance(key, _Duplicate):
            return (*frame.path, f"<duplicate {_short(key.key)}>")
        parent[key] = item
        return (*frame.path, key)
    parent.append(item)
    return (*frame.path, len(parent) - 1)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else _short(tag)


def _short(text: object) -> str:
    """A tag or anchor for a message: bounded, control characters escaped (libyaml decodes %1B in tags)."""
    return shown(str(text))[1:-1]


class _Duplicate:
    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key


_NO_KEY: Any = object()

"""Load-time checks of what a CEL expression references.

The CEL library reports unknown variables and missing keys only when evaluation reaches
them, and short-circuiting (``a && b``) can hide them from any one sample input. So the
expression is tokenised and every reference chain (``secret.labels.env``,
``principals[r].env``, a comprehension variable's fields) is resolved against the input
document's JSON Schema. Free-form maps (labels, principals by name) accept any key;
closed objects accept only their documented fields.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cloudsync.policy.document import Schema

KEYWORDS = frozenset({"true", "false", "null", "in"})
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
ANY: Schema = {}

_TOKEN = re.compile(
    r"""(?P<space>\s+|//[^\n]*)
    |(?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?|\.\d+)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>.)""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    offset: int


@dataclass(frozen=True)
class Problem:
    """A reference the input document does not have, at ``offset`` in the expression."""

    message: str
    offset: int
    hint: str | None = None


def tokenize(source: str) -> list[Token]:
    tokens = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "punct"
        if kind != "space":
            tokens.append(Token(kind, m.group(), m.start()))
    return tokens


def _literal(token: Token) -> str | None:
    """The value of a plain quoted string token (no escapes), else None."""
    text = token.text
    if token.kind == "string" and text[0] in "\"'" and len(text) >= 2 and "\\" not in text and text[:3] not in (
            '"""', "'''"):
        return text[1:-1]
    return None


def _closing(tokens: list[Token], start: int) -> int:
    """Index of the bracket closing ``tokens[start]`` (or the last index)."""
    depth = 0
    pairs = {"[": "]", "(": ")", "{": "}"}
    for i in range(start, len(tokens)):
        text = tokens[i].text
        if text in pairs:
            depth += 1
        elif text in pairs.values():
            depth -= 1
            if depth == 0:
                return i
    return len(tokens) - 1


@dataclass(frozen=True)
class Chain:
    """``root.a[*].b``: a path of names (``None`` for a computed index) from a root."""

    parts: tuple[str | None, ...]
    offset: int
    bind: str | None = None  # a comprehension variable bound over this chain's items
    start: int = 0  # index of its first token
    end: int = 0  # index of the token after it


def chains(tokens: list[Token]) -> Iterator[Chain]:
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text in KEYWORDS:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue  # a field or a method, part of the chain before it
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            continue  # a global function: has(), size(), timestamp() ...
        parts: list[str | None] = [tok.text]
        bind = None
        j = i + 1
        while j < len(tokens):
            if tokens[j].text == "." and j + 1 < len(tokens) and tokens[j + 1].kind == "ident":
                if j + 2 < len(tokens) and tokens[j + 2].text == "(":
                    method = tokens[j + 1].text
                    if (method in MACROS and j + 4 < len(tokens) and tokens[j + 3].kind == "ident"
                            and tokens[j + 4].text == ","):
                        bind = tokens[j + 3].text
                    break
                parts.append(tokens[j + 1].text)
                j += 2
            elif tokens[j].text == "[":
                end = _closing(tokens, j)
                inner = tokens[j + 1:end]
                parts.append(_literal(inner[0]) if len(inner) == 1 else None)
                j = end + 1
            else:
                break
        yield Chain(tuple(parts), tok.offset, bind, i, j)


def bound_names(tokens: list[Token]) -> set[str]:
    """Every name a comprehension macro binds: ``x`` in ``.exists(x, ...)``."""
    names = set()
    for i in range(len(tokens) - 4):
        if (tokens[i].text == "." and tokens[i + 1].text in MACROS and tokens[i + 2].text == "("
                and tokens[i + 3].kind == "ident" and tokens[i + 4].text == ","):
            names.add(tokens[i + 3].text)
    return names


def _kinds(schema: Schema) -> set[str]:
    kinds = schema.get("type")
    if kinds is None:
        return set()
    return {k for k in (kinds if isinstance(kinds, list) else [kinds]) if k != "null"}


def _step(schema: Schema, part: str | None, shown: str) -> tuple[Schema, Problem | None, str | None]:
    """Resolve one step; returns (schema, problem message, hint)."""
    kinds = _kinds(schema)
    if not kinds:
        return ANY, None, None
    if "object" in kinds:
        props = schema.get("properties")
        if props is None:
            return schema.get("additionalProperties") or ANY, None, None
        if part is None:
            return ANY, None, None  # a computed key into a closed object: any of its fields
        if part in props:
            return props[part], None, None
        close = difflib.get_close_matches(part, list(props), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"{shown} has: {', '.join(sorted(props))}"
        return ANY, Problem(f"{shown} has no field {part!r}", 0), hint
    if "array" in kinds:
        if part is None or (part.isdigit()):
            return schema.get("items") or ANY, None, None
        return ANY, Problem(f"{shown} is a list; it has no field {part!r}", 0), "iterate it with .exists(x, ...)"
    kind = sorted(kinds)[0]
    return ANY, Problem(f"{shown} is a {kind}; it has no field {part!r}", 0), None


def _element(schema: Schema) -> Schema:
    """What a comprehension variable ranges over: list items, or map keys (strings)."""
    kinds = _kinds(schema)
    if "array" in kinds:
        return schema.get("items") or ANY
    if "object" in kinds:
        return {"type": "string"}
    return ANY


RESERVED_PREFIX = "cs__"  # names the engine binds when it batches documents (see engine.py)


def check_references(source: str, roots: Mapping[str, Schema]) -> list[Problem]:
    """Every reference in ``source`` the document described by ``roots`` does not have."""
    tokens = tokenize(source)
    bound = bound_names(tokens)
    scopes: dict[str, Schema] = {}
    problems: list[Problem] = [
        Problem(f"names starting with {RESERVED_PREFIX!r} are reserved", t.offset, "rename it")
        for t in tokens if t.kind == "ident" and t.text.startswith(RESERVED_PREFIX)]
    for name in sorted(bound & set(roots)):
        offset = next(t.offset for t in tokens if t.text == name)
        problems.append(Problem(f"the comprehension variable {name!r} hides the input variable of that name",
                                offset, "choose another name, e.g. x"))
    for chain in chains(tokens):
        root = chain.parts[0]
        assert root is not None
        if root.startswith(RESERVED_PREFIX):
            continue  # reported above
        if root in roots:
            schema: Schema = roots[root]
        elif root in scopes:
            schema = scopes[root]
        elif root in bound:
            schema = ANY  # bound over something this checker cannot type (a literal, a call result)
        else:
            close = difflib.get_close_matches(root, [*roots, *bound], n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"the input document has: {', '.join(roots)}"
            problems.append(Problem(f"unknown variable {root!r}", chain.offset, hint))
            continue
        shown = root
        failed = False
        for part in chain.parts[1:]:
            schema, problem, step_hint = _step(schema, part, shown)
            if problem is not None:
                problems.append(Problem(problem.message, chain.offset, step_hint))
                failed = True
                break
            shown += f".{part}" if part is not None else "[...]"
        if chain.bind is not None:
            # A name bound twice over different things is left unchecked rather than guessed.
            element = ANY if failed else _element(schema)
            scopes[chain.bind] = element if scopes.get(chain.bind, element) == element else ANY
    return problems


def references_roots(source: str, roots: Mapping[str, Any]) -> frozenset[str]:
    """The document roots ``source`` reads (used to share results across targets)."""
    tokens = tokenize(source)
    return frozenset(c.parts[0] for c in chains(tokens) if c.parts[0] in roots)  # type: ignore[misc]


def rewrite(source: str, names: Mapping[str, str]) -> str:
    """``source`` with each root variable in ``names`` replaced by an expression.

    Only identifiers that start a reference are replaced: not fields (``x.secret``), not
    functions, not text inside string literals. Load-time checks forbid comprehension
    variables that shadow a root, so every replaced name is the input variable.
    """
    tokens = tokenize(source)
    out: list[str] = []
    last = 0
    for i, tok in enumerate(tokens):
        if tok.kind != "ident" or tok.text not in names:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            continue
        out += [source[last:tok.offset], names[tok.text]]
        last = tok.offset + len(tok.text)
    out.append(source[last:])
    return "".join(out)


# --- what a policy reads, so documents carry only that ------------------------------------

WHOLE: Any = None  # a part of the document needed in full


def needs(sources: list[str], roots: Mapping[str, Schema]) -> dict[str, Any]:
    """The parts of each root of ``roots`` that the expressions ``sources`` can read.

    A tree per root: ``{"effective_readers": {"*": {"declared": WHOLE}}}`` means only the
    ``declared`` field of each effective reader; :data:`WHOLE` means all of it. Fields are
    left out only of closed objects (the schema lists their properties); maps (labels,
    principals by name) and anything reached by a computed key are kept whole. Whenever
    the analysis cannot follow a name, it keeps more, never less: a rule that got less
    than it reads would fail (closed, as a violation) where it should pass.
    """
    tree: dict[str, Any] = {}
    for source in sources:
        tokens = tokenize(source)
        found = list(chains(tokens))
        bases: dict[str, list[tuple[str | None, ...]]] = {}  # bound name -> the paths it ranges over
        for chain in found:
            if chain.bind is not None:
                bases.setdefault(chain.bind, [])
        for chain in found:  # a bind over a bound name is resolved through it (a second pass would not add)
            if chain.bind is not None:
                bases[chain.bind] += [(*base, "*") for base in _paths(chain, roots, bases)]
        if bound_names(tokens) - set(bases):
            # A name bound over something that is not a plain reference (a call's result, a
            # literal, a filtered list): its fields cannot be traced, so nothing is left out.
            return dict.fromkeys(roots, WHOLE)
        for chain in found:
            if _binding(tokens, chain):
                continue
            for path in _paths(chain, roots, bases):
                if _null_test(tokens, chain):
                    _present(tree, path)
                else:
                    _need(tree, path, iterated=chain.bind is not None)
    return tree


def _binding(tokens: list[Token], chain: Chain) -> bool:
    """The ``x`` that ``.exists(x, ...)`` binds (a declaration, not a use)."""
    i = chain.start
    return (len(chain.parts) == 1 and i >= 2 and tokens[i - 1].text == "(" and tokens[i - 2].text in MACROS
            and i + 1 < len(tokens) and tokens[i + 1].text == ",")


def _null_test(tokens: list[Token], chain: Chain) -> bool:
    """``x == null`` / ``x != null`` (either way round): only whether ``x`` is there is read."""
    after = [t.text for t in tokens[chain.end:chain.end + 3]]
    before = [t.text for t in tokens[max(chain.start - 3, 0):chain.start]]
    return (chain.bind is None and (after in (["=", "=", "null"], ["!", "=", "null"])
                                    or before in (["null", "=", "="], ["null", "!", "="])))


def _present(tree: dict[str, Any], path: tuple[str | None, ...]) -> None:
    """Keep ``path`` (an object stays an object, null stays null) without asking for its fields."""
    node = tree
    for part in path:
        if part is None or node.get(part, {}) is WHOLE:
            return
        node = node.setdefault(part, {})


def _paths(chain: Chain, roots: Mapping[str, Schema], bases: Mapping[str, list[tuple[str | None, ...]]],
           ) -> list[tuple[str | None, ...]]:
    root = chain.parts[0]
    if root in roots:
        return [chain.parts]
    return [(*base, *chain.parts[1:]) for base in bases.get(root or "", [])]


def _need(tree: dict[str, Any], path: tuple[str | None, ...], *, iterated: bool) -> None:
    """Mark ``path`` needed; an iterated path needs only what its bound name reads (marked separately)."""
    if None in path:  # a computed key: everything from there on
        _whole_at(tree, path[:path.index(None)])
        return
    node = tree
    for i, part in enumerate(path):
        assert part is not None
        if node.get(part, {}) is WHOLE:
            return
        if i < len(path) - 1:
            node = node.setdefault(part, {})
        elif iterated:
            node.setdefault(part, {}).setdefault("*", {})
        else:
            node[part] = WHOLE


def _whole_at(tree: dict[str, Any], path: tuple[str | None, ...]) -> None:
    node = tree
    for i, part in enumerate(path):
        assert part is not None
        if node.get(part, {}) is WHOLE:
            return
        if i == len(path) - 1:
            node[part] = WHOLE
            return
        node = node.setdefault(part, {})

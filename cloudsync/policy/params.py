"""Policy parameters: the type each declares (by its default), and values checked against it.

Values come from YAML (a stack's ``policy.parameters``, a policy test case), so they can be
anything YAML makes: dates, timestamps, mappings, lists of lists, integers past CEL's 64
bits, binary, sets, even a list that holds itself. Each value is checked against its
declared type before it reaches CEL; a mismatch is a diagnostic at its line, never a
conversion error in the middle of an evaluation. A check looks at most two levels deep
(a list of scalars), so a self-referencing structure is refused, never walked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_ITEMS = 1000
MAX_STRING = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # CEL's int

_KIND_NAMES = {"string": "a string", "boolean": "a boolean", "integer": "an integer", "number": "a number"}


@dataclass(frozen=True)
class ParamType:
    """``kind`` is string, boolean, integer, number or array; ``items`` the kind of an array's items
    (None when the declared default is an empty list: any scalar)."""

    kind: str
    items: str | None = None

    def describe(self) -> str:
        if self.kind != "array":
            return _KIND_NAMES[self.kind]
        return f"a list of {self.items}s" if self.items else "a list of strings, numbers or booleans"


def json_type(value: Any) -> str:
    """The JSON Schema type name of a plain value (the Python type's name for anything else)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__  # a date, a set, bytes: no JSON type


_WORDS = {"boolean": "a boolean", "integer": "an integer", "number": "a number", "string": "a string",
          "array": "a list", "tuple": "a list", "object": "a mapping", "null": "null", "datetime": "a timestamp",
          "date": "a date", "bytes": "binary data", "set": "a set", "frozenset": "a set"}


def yaml_kind(value: Any) -> str:
    """What a YAML value is, in the words of a YAML author."""
    kind = json_type(value)
    return _WORDS.get(kind, f"a {kind} value")


def _scalar(value: Any) -> tuple[str | None, str | None]:
    """(kind, problem) of a scalar parameter value; kind None when it is not one."""
    if isinstance(value, bool):
        return "boolean", None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return "integer", "is an integer outside the 64-bit range CEL computes with"
        return "integer", None
    if isinstance(value, float):
        return "number", None if math.isfinite(value) else "is not a finite number"
    if isinstance(value, str):
        return "string", None if len(value) <= MAX_STRING else f"is a string longer than {MAX_STRING} characters"
    return None, None


def _fits(kind: str, want: str) -> bool:
    return kind == want or (want == "number" and kind == "integer")


def declared_type(default: Any) -> tuple[ParamType | None, tuple[tuple[int, ...], str] | None]:
    """The type a default declares, or (where in it, what is wrong) when it declares none."""
    if isinstance(default, list):
        if len(default) > MAX_ITEMS:
            return None, ((), f"is a list of more than {MAX_ITEMS} items")
        kinds: list[str] = []
        for i, item in enumerate(default):
            kind, problem = _scalar(item)
            if kind is None or problem:
                return None, ((i,), problem or f"holds {yaml_kind(item)}; list items are strings, numbers or booleans")
            kinds.append(kind)
        unique = {"number" if k == "integer" and "number" in kinds else k for k in kinds}
        if len(unique) > 1:
            return None, ((), f"mixes {', '.join(sorted(unique))} items; a list holds one kind")
        return ParamType("array", unique.pop() if unique else None), None
    kind, problem = _scalar(default)
    if kind is None or problem:
        return None, ((), problem or f"is {yaml_kind(default)}; a default is a string, number, boolean or list")
    return ParamType(kind), None


def check_value(value: Any, want: ParamType) -> tuple[Any, tuple[tuple[int, ...], str] | None]:
    """``value`` as CEL should see it, or (where in it, what is wrong)."""
    if want.kind != "array":
        kind, problem = _scalar(value)
        if kind is None or not _fits(kind, want.kind):
            return None, ((), f"must be {want.describe()}, got {yaml_kind(value)}")
        if problem:
            return None, ((), problem)
        return (float(value) if want.kind == "number" else value), None
    if not isinstance(value, list):
        return None, ((), f"must be {want.describe()}, got {yaml_kind(value)}")
    if len(value) > MAX_ITEMS:
        return None, ((), f"holds {len(value)} items; at most {MAX_ITEMS} are allowed")
    items: list[Any] = []
    for i, item in enumerate(value):
        kind, problem = _scalar(item)
        if kind is None or (want.items is not None and not _fits(kind, want.items)):
            return None, ((i,), f"must be {want.describe()}, but item {i + 1} is {yaml_kind(item)}")
        if problem:
            return None, ((i,), f"item {i + 1} {problem}")
        items.append(float(item) if want.items == "number" else item)
    return items, None

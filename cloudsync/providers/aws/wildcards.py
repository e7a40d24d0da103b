"""IAM's wildcard rules: does an ``Action`` or ``Resource`` pattern of a policy match?

The rules, from the IAM User Guide ("IAM JSON policy elements: Action / Resource"):

- ``*`` matches any run of characters, ``?`` exactly one; every other character is literal
  (a ``[`` is just a bracket, unlike in shell globs).
- Actions match case-insensitively (``secretsmanager:getsecretvalue`` is the same action);
  resource ARNs match case-sensitively.
- In a resource ARN, wildcards match inside one colon-separated segment, except that a ``*``
  ending a segment may run on past the colons (``arn:aws:secretsmanager:*`` covers every
  secret). ``*`` alone matches every resource.
- Policy variables: ``${*}``, ``${?}`` and ``${$}`` are the literal characters; any other
  variable (``${aws:username}``, ``${aws:PrincipalTag/team}``) takes its value from the
  request, so it is matched as ``*`` and the match reported as depending on the request.

Why not a library: ``policyuniverse`` expands actions from a 2023 snapshot of AWS's action
list and does not match resource ARNs; ``parliament`` matches pattern against pattern (no
``?``, exponential recursion on ``*``); ``iam-ape`` is GPL-3.0; ``fnmatch`` treats ``[`` as a
character class and lets ``*`` cross colons. The translation below is the one the standard
library's :func:`fnmatch.translate` uses (each interior ``*chunk`` an atomic group, so a
match runs in linear time, never backtracking catastrophically), with IAM's literals and
segments.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

# IAM documents are at most 10,240 characters (an inline role policy); a longer pattern
# cannot come from AWS and is refused rather than compiled.
MAX_PATTERN = 10_240
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = frozenset({"*", "?", "$"})
_IN_SEGMENT = "[^:]"
_BOUNDARY = ":"


class _Wild(Enum):
    STAR = "*"
    ONE = "?"


_Token = str | _Wild


def _tokens(pattern: str) -> list[_Token]:
    """``pattern`` as literal characters and wildcards, IAM's policy variables resolved."""
    tokens: list[_Token] = []
    for index, piece in enumerate(_VARIABLE.split(pattern)):  # text, variable name, text, ...
        if index % 2:
            tokens.append(piece if piece in _LITERAL_VARIABLES else _Wild.STAR)
        else:
            tokens.extend(_Wild.STAR if c == "*" else _Wild.ONE if c == "?" else c for c in piece)
    return tokens


def _regex(tokens: list[_Token], any_char: str) -> str:
    """A linear-time regular expression for a glob (the structure of fnmatch.translate)."""
    chunks: list[list[str]] = [[]]
    for token in tokens:
        if token is _Wild.STAR:
            chunks.append([])
        else:
            chunks[-1].append(any_char if token is _Wild.ONE else re.escape(token))
    fixed = ["".join(chunk) for chunk in chunks]
    if len(fixed) == 1:
        return fixed[0]
    # The leftmost match of an interior chunk is always a right one: commit to it (atomic group).
    interior = "".join(f"(?>{any_char}*?{chunk})" for chunk in fixed[1:-1] if chunk)
    return f"{fixed[0]}{interior}{any_char}*{fixed[-1]}"


@dataclass(frozen=True)
class _Segment:
    regex: re.Pattern[str]
    open_end: bool  # ends with ``*``: may run on past the next colons


@dataclass(frozen=True)
class ResourcePattern:
    """A compiled ``Resource`` pattern."""

    whole: re.Pattern[str] | None  # segment by segment, for an ARN with as many segments
    segments: tuple[_Segment, ...]
    anything: bool  # ``*`` alone
    variable: bool  # holds a request-dependent policy variable

    def matches(self, arn: str) -> bool:
        if self.anything:
            return True
        count = arn.count(_BOUNDARY) + 1
        if count == len(self.segments):
            # Each pattern segment covers exactly one ARN segment: one regex (the usual case).
            return self.whole is not None and self.whole.fullmatch(arn) is not None
        if count < len(self.segments):
            return False
        # Fewer pattern segments than the ARN's: some segment-ending * runs past colons.
        parts = arn.split(_BOUNDARY)
        reached = {0}  # how many ARN segments the pattern segments seen so far can cover
        for segment in self.segments:
            following: set[int] = set()
            for start in reached:
                if start < len(parts) and segment.regex.fullmatch(parts[start]):
                    following.add(start + 1)
                    if segment.open_end:
                        following.update(range(start + 2, len(parts) + 1))
            if not following:
                return False
            reached = following
        return len(parts) in reached


def has_variable(pattern: str) -> bool:
    """Whether ``pattern`` uses a policy variable whose value comes from the request."""
    return any(name not in _LITERAL_VARIABLES for name in _VARIABLE.findall(pattern))


@functools.lru_cache(maxsize=4096)
def _action_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_regex(_tokens(pattern), "."), re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an ``Action`` / ``NotAction`` entry covers ``action`` (case-insensitive)."""
    if len(pattern) > MAX_PATTERN:
        return False
    return _action_regex(pattern).fullmatch(action) is not None


@functools.lru_cache(maxsize=4096)
def resource_pattern(pattern: str) -> ResourcePattern:
    """Compile a ``Resource`` / ``NotResource`` entry (cached: policies repeat their patterns)."""
    if len(pattern) > MAX_PATTERN:
        return ResourcePattern(None, (), anything=False, variable=False)  # matches nothing
    if pattern == "*":
        return ResourcePattern(None, (), anything=True, variable=False)
    # Split on literal colons only: ``${aws:username}`` holds a colon that is not a boundary.
    segments: list[list[_Token]] = [[]]
    for token in _tokens(pattern):
        if token == _BOUNDARY:
            segments.append([])
        else:
            segments[-1].append(token)
    fragments = [_regex(segment, _IN_SEGMENT) for segment in segments]
    return ResourcePattern(
        whole=re.compile(_BOUNDARY.join(fragments), re.DOTALL),
        segments=tuple(_Segment(re.compile(fragment, re.DOTALL), open_end=bool(segment) and segment[-1] is _Wild.STAR)
                       for fragment, segment in zip(fragments, segments, strict=True)),
        anything=False,
        variable=has_variable(pattern),
    )


def resource_matches(pattern: str, arn: str) -> bool:
    """Whether a ``Resource`` / ``NotResource`` entry covers ``arn`` (case-sensitive)."""
    return resource_pattern(pattern).matches(arn)

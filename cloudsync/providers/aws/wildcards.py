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
``?``, exponential recursion on ``*``); ``iam-ape`` is GPL-3.0. The standard library's
:func:`fnmatch.translate` already turns a glob into a regular expression that runs in linear
time (atomic groups, no catastrophic backtracking), so the IAM rules above are a thin layer
on top of it: escape what IAM treats as literal, split ARNs into segments.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass

# IAM documents are at most 10,240 characters (an inline role policy); a longer pattern
# cannot come from AWS and is refused rather than compiled.
MAX_PATTERN = 10_240
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "[*]", "?": "[?]", "$": "$"}


@dataclass(frozen=True)
class _Segment:
    regex: re.Pattern[str]
    open_end: bool  # ends with ``*``: may run on past the next colons


@dataclass(frozen=True)
class ResourcePattern:
    """A compiled ``Resource`` pattern."""

    segments: tuple[_Segment, ...]
    anything: bool  # ``*`` alone
    variable: bool  # holds a request-dependent policy variable

    def matches(self, arn: str) -> bool:
        if self.anything:
            return True
        parts = arn.split(":")
        if len(self.segments) == len(parts):
            # As many segments as the ARN: each covers exactly one (the usual, fast case; the
            # resource name, last, tells most ARNs apart).
            return all(segment.regex.match(part) for segment, part in zip(reversed(self.segments), reversed(parts),
                                                                             strict=True))
        reached = {0}  # how many ARN segments the pattern segments seen so far can cover
        for segment in self.segments:
            following: set[int] = set()
            for start in reached:
                if start < len(parts) and segment.regex.match(parts[start]):
                    following.add(start + 1)
                    if segment.open_end:
                        following.update(range(start + 2, len(parts) + 1))
            if not following:
                return False
            reached = following
        return len(parts) in reached


def _glob(pattern: str) -> str:
    """``pattern`` in fnmatch's syntax: IAM's variables resolved, brackets made literal."""
    pieces = _VARIABLE.split(pattern)  # text, variable name, text, variable name, ...
    return "".join(_LITERAL_VARIABLES.get(piece, "*") if index % 2 else piece.replace("[", "[[]")
                   for index, piece in enumerate(pieces))


def has_variable(pattern: str) -> bool:
    """Whether ``pattern`` uses a policy variable whose value comes from the request."""
    return any(name not in _LITERAL_VARIABLES for name in _VARIABLE.findall(pattern))


@functools.lru_cache(maxsize=4096)
def _action_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(_glob(pattern)), re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an ``Action`` / ``NotAction`` entry covers ``action`` (case-insensitive)."""
    if len(pattern) > MAX_PATTERN:
        return False
    return _action_regex(pattern).match(action) is not None


@functools.lru_cache(maxsize=4096)
def resource_pattern(pattern: str) -> ResourcePattern:
    """Compile a ``Resource`` / ``NotResource`` entry (cached: policies repeat their patterns)."""
    if len(pattern) > MAX_PATTERN:
        return ResourcePattern((), anything=False, variable=False)  # matches nothing
    variable = has_variable(pattern)
    if pattern == "*":
        return ResourcePattern((), anything=True, variable=False)
    # Variables first: ``${aws:username}`` holds a colon that is not a segment boundary.
    segments = []
    for part in _glob(pattern).split(":"):
        segments.append(_Segment(re.compile(fnmatch.translate(part)), open_end=part.endswith("*")
                                 and not part.endswith("[*]")))
    return ResourcePattern(tuple(segments), anything=False, variable=variable)


def resource_matches(pattern: str, arn: str) -> bool:
    """Whether a ``Resource`` / ``NotResource`` entry covers ``arn`` (case-sensitive)."""
    return resource_pattern(pattern).matches(arn)

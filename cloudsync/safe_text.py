"""Show any value safely: bounded, and without control or invisible formatting characters.

Stack files, policy files and remote metadata come from people who must not be trusted
(a pull request), and what they wrote reaches terminals, PR comments, SARIF and JUnit.
A raw ESC clears the screen or moves the cursor; CR and LF forge whole lines (a fake
"No changes."); bidi overrides (U+202E) and zero-width characters make text read other
than it is. Every renderer passes such values through :func:`safe_text`: each of those
characters becomes a visible escape (``\\x1b``, ``\\n``, ``\\u202e``, as Python writes
them) and the result is cut to a bound, so one value can neither hide nor drown the rest.
"""

from __future__ import annotations

import re
import reprlib
import unicodedata

NAME_LIMIT = 600  # names, addresses, paths: AWS allows 512-character secret names
TEXT_LIMIT = 1000  # messages, descriptions, reasons

# Printable ASCII needs no look; anything else is judged by its Unicode category.
_SUSPECT = re.compile(r"[^\x20-\x7e]")
# Controls, format characters (bidi, zero-width, BOM), surrogates, private use, unassigned
# (a future format character), line and paragraph separators.
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxstring, _repr.maxother = 3, 20, 20, 200, 200


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    return _escape(char) if unicodedata.category(char) in _UNSAFE else char


def _replace_keeping_lines(match: re.Match[str]) -> str:
    return "\n" if match.group() == "\n" else _replace(match)


def _show(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        return f"(an integer of {value.bit_length()} bits)"  # str() of a huge int is slow, then refused
    if isinstance(value, int | float | None):
        return str(value)
    try:
        return _repr.repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not break a report
        return f"({type(value).__name__})"


def safe_text(value: object, limit: int | None = TEXT_LIMIT, *, lines: bool = False) -> str:
    """``value`` as text fit for any output: unsafe characters escaped, at most ``limit`` characters.

    ``lines=True`` keeps line feeds (for a whole rendered report); every other control is
    escaped. Values that are not strings are shown by a bounded ``repr`` (recursion-safe).
    A cut value ends with ``…`` and its full length, so the cut is visible.
    """
    text = value if isinstance(value, str) else _show(value)
    head = text if limit is None else text[:limit]
    shown = _SUSPECT.sub(_replace_keeping_lines if lines else _replace, head)
    if limit is not None and (len(text) > limit or len(shown) > limit):
        return f"{shown[:limit]}… ({len(text)} characters)"
    return shown

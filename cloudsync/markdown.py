"""Markdown escaping: one function for every string a report interpolates into markdown.

Names, descriptions, labels, principals, policy messages and hints come from pull requests
and from the clouds. In a PR comment or in SARIF ``help.markdown`` a ``*`` or ``_`` turns
text italic, a backtick opens a code span, a ``|`` splits a table cell, ``<script>`` or
``<img>`` is HTML, ``$`` starts GitHub's math, ``[x](y)`` is a link. :func:`escape` makes
any of them literal text:

- :func:`~cloudsync.safe_text.safe_text` first: bounded, control characters and line
  breaks shown as visible escapes (``\\n``), so nothing starts a line of its own;
- then every character with a markdown or HTML meaning becomes a numeric character
  reference (``&#42;`` for ``*``). References are read as literal characters both in
  markdown text and inside raw HTML (a ``<summary>``, where backslash escapes would show),
  and GFM splits table cells on raw ``|`` only, so one form is safe in every place a
  report puts text: paragraphs, table cells, block quotes, list items, ``<summary>``.

Inside a code span references are not decoded: code spans go through :func:`code`.
"""

from __future__ import annotations

import re

from cloudsync.safe_text import NAME_LIMIT, TEXT_LIMIT, safe_text

# ASCII characters with a meaning anywhere inside a line in CommonMark, GFM or GitHub's renderer
# (``$``: math). Other punctuation only means something at the start of a line (``#``, ``-``,
# ``+``, ``=``) or right after one of these (``(`` after ``]``, ``!`` before ``[``), and no
# interpolated string starts a line: they stay as they are, so names and messages read well.
_SPECIAL = frozenset("\\`*_[]<>&|~$")
_REFERENCE = {char: f"&#{ord(char)};" for char in _SPECIAL}
_PATTERN = re.compile("[" + re.escape("".join(sorted(_SPECIAL))) + "]")


def escape(text: object, limit: int = TEXT_LIMIT) -> str:
    """``text`` as literal markdown text: bounded, one line, no markup, HTML or table break in it."""
    return _PATTERN.sub(lambda m: _REFERENCE[m.group()], safe_text(text, limit))


def code(text: object, limit: int = NAME_LIMIT) -> str:
    """``text`` as a code span that nothing in it can close, safe inside a table cell.

    GFM splits a table row on ``|`` before it reads code spans, so a pipe is written ``\\|``
    (the table parser removes the backslash); only use code spans in table cells or for text
    that cannot hold a ``|``.
    """
    shown = safe_text(text, limit).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", shown)), default=0) + 1)
    pad = " " if shown.startswith("`") or shown.endswith("`") else ""
    return f"{fence}{pad}{shown}{pad}{fence}"

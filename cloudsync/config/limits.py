"""What a stack may be: the bounds every file from a pull request is held to.

Stack files come from people who must not be trusted until their change is reviewed, and
``validate``, ``policy check`` and ``plan --metadata-only`` run on them before that. Each
bound is checked before the expensive step it protects (reading, parsing, validating),
and each breach is a diagnostic at ``file:line:col`` — never a crash, a hang or a
memory blow-up. The numbers are far above what a real stack needs (the largest
benchmarks, 10,000 secrets in one file, use a few MiB and a depth of 6).
"""

from __future__ import annotations

import reprlib

MAX_FILE_BYTES = 8 * 1024 * 1024
"""One YAML file of the stack (``cloudsync.yaml``, ``secrets/*.yaml``, ``policies/*.yaml``, a SOPS file)."""

MAX_FILES = 1000
"""YAML files in one folder (``secrets/``, ``policies/``, each ``policy.dirs`` entry)."""

MAX_DEPTH = 64
"""Nesting of mappings and sequences in one file (a stack needs about 6)."""

MAX_ALIAS_NODES = 100_000
"""Nodes one file may reach through aliases in total: a billion laughs stops at the first alias past it."""

MAX_MAPPING_KEYS = 10_000
"""Keys in one mapping (10,000 principals or labels is already far beyond any real stack)."""

MAX_SCALAR_CHARS = 64 * 1024
"""One value or key (a description is at most 2,048 characters; a CEL rule a few hundred)."""

MAX_DIAGNOSTICS_PER_FILE = 50
"""Problems reported for one file; the rest are counted, so a hostile file cannot flood the output."""

MAX_VALUE_FILE_BYTES = 64 * 1024
"""A ``value: {file: ...}``: 64 KiB is the largest value AWS and GCP accept (Azure: 25k characters)."""

INT_RANGE = (-(2**63), 2**63 - 1)
"""Integers in stack files are 64-bit: what every cloud and the CEL policy language hold."""

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = 80
_SHOWN.maxother = 80
_SHOWN.maxlong = 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = _SHOWN.maxdict = 5
_SHOWN.maxlevel = 3


def shown(value: object) -> str:
    """``repr(value)`` bounded in length and depth, for a message: never the whole of a huge input.

    Strings keep ``repr``'s escaping, so control characters appear as ``\\x1b``, never raw.
    """
    try:
        return _SHOWN.repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, a pathological __repr__
        return f"<{type(value).__name__}>"

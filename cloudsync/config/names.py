"""Translation of logical secret names to each cloud's remote names.

The rules are deterministic and documented in docs/names.md:

===========  ==============================  ===========================================
provider     allowed remote name             translation of a logical name
===========  ==============================  ===========================================
local, aws   ``[A-Za-z0-9/_+=.@-]{1,512}``   unchanged
gcp          ``[A-Za-z0-9_-]{1,255}``        ``/`` becomes ``__``, ``.`` becomes ``_``
azure        ``[0-9A-Za-z-]{1,127}``         ``/`` becomes ``--``, ``_`` and ``.`` become ``-``
===========  ==============================  ===========================================

A declaration may override the result per target (``names: {target: remote-name}``);
the override must be valid for that cloud. Because the rules fold some characters
together (``a_b`` and ``a.b`` are both ``a_b`` in GCP), two declarations that land on one
remote name are a validation error naming both. Azure names are case-insensitive, so
collisions there are compared case-folded.
"""

from __future__ import annotations

import re

REMOTE_NAME_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "local": (re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$"), "letters, digits and /_+=.@- (at most 512)"),
    "aws": (re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$"), "letters, digits and /_+=.@- (at most 512)"),
    "gcp": (re.compile(r"^[A-Za-z0-9_-]{1,255}$"), "letters, digits, '_' and '-' (at most 255)"),
    "azure": (re.compile(r"^[0-9A-Za-z-]{1,127}$"), "letters, digits and '-' (at most 127)"),
}

_GCP = str.maketrans({".": "_"})
_AZURE = str.maketrans({"_": "-", ".": "-"})


def translate(logical: str, provider: str) -> str:
    """The remote name of ``logical`` in a target of ``provider`` (no override applied)."""
    if provider == "gcp":
        return logical.replace("/", "__").translate(_GCP)
    if provider == "azure":
        return logical.replace("/", "--").translate(_AZURE)
    return logical


def collision_key(remote: str, provider: str) -> str:
    """The form under which two remote names are the same secret in that cloud."""
    return remote.casefold() if provider == "azure" else remote


def check_remote_name(remote: str, provider: str) -> str | None:
    """A readable problem with ``remote`` in ``provider``, or None when it is valid."""
    pattern, allowed = REMOTE_NAME_RULES.get(provider, REMOTE_NAME_RULES["aws"])
    if pattern.fullmatch(remote):
        return None
    return f"remote name {remote!r} is not valid in {provider}: allowed are {allowed}"

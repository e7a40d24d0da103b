"""Random passwords: a charset, excluded characters, and character classes that must appear.

The guarantee is exact: every required class appears at least once. Passwords are drawn
uniformly from the charset and redrawn until they meet it (rejection sampling keeps the
distribution uniform over all valid passwords, so no position is predictable). Only in
the astronomically unlikely case that many draws in a row fail are the missing classes
placed at random positions instead.
"""

from __future__ import annotations

import functools
import secrets
import string
from collections.abc import Sequence

ALPHABETS: dict[str, str] = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
    "printable": string.ascii_letters + string.digits + string.punctuation,
}

CLASSES: dict[str, str] = {
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "digit": string.digits,
    "symbol": string.punctuation,
}

MAX_DRAWS = 200


@functools.lru_cache(maxsize=256)  # asked once per declared password when a stack loads
def alphabet(charset: str, exclude: str = "") -> str:
    """The characters a password is drawn from: the named charset minus ``exclude``."""
    return "".join(c for c in ALPHABETS[charset] if c not in exclude)


def class_members(name: str, chars: str) -> str:
    """The characters of ``chars`` that belong to class ``name``; symbols are any non-alphanumeric."""
    if name == "symbol":
        return "".join(c for c in chars if not c.isalnum())
    return "".join(c for c in chars if c in CLASSES[name])


def meets(password: str, chars: str, required: Sequence[str]) -> bool:
    return all(any(c in class_members(name, chars) for c in password) for name in required)


def generate_password(length: int, charset: str, require: Sequence[str] = (), exclude: str = "") -> str:
    """A password of ``length`` characters from the charset holding every required class."""
    chars = alphabet(charset, exclude)
    required = list(dict.fromkeys(require))
    if len(chars) < 2 or len(required) > length or any(not class_members(r, chars) for r in required):
        raise ValueError("unsatisfiable password settings")  # the models reject these at load time
    for _ in range(MAX_DRAWS):
        candidate = "".join(secrets.choice(chars) for _ in range(length))
        if meets(candidate, chars, required):
            return candidate
    return _placed(length, chars, required)


def _placed(length: int, chars: str, required: Sequence[str]) -> str:
    """Fallback: one character of each class at distinct random positions, the rest uniform."""
    out = [secrets.choice(chars) for _ in range(length)]
    positions = list(range(length))
    for name in required:
        pos = positions.pop(secrets.randbelow(len(positions)))
        out[pos] = secrets.choice(class_members(name, chars))
    return "".join(out)

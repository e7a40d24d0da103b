"""The in-memory form of a plaintext value: it refuses to be printed, logged or pickled."""

from __future__ import annotations

import hmac
from typing import NoReturn


class SecretValue:
    """Plaintext bytes that render as ``(sensitive)`` everywhere.

    ``repr``, ``str``, f-strings, logging and exception text all show ``(sensitive)``;
    pickling and copying to JSON fail. Call :meth:`reveal` only on the way to a provider.
    """

    __slots__ = ("_data",)

    def __init__(self, data: bytes | str) -> None:
        self._data = data.encode("utf-8") if isinstance(data, str) else bytes(data)

    def reveal(self) -> bytes:
        return self._data

    def reveal_text(self) -> str:
        return self._data.decode("utf-8")

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return "SecretValue((sensitive))"

    def __str__(self) -> str:
        return "(sensitive)"

    def __format__(self, spec: str) -> str:
        return "(sensitive)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and hmac.compare_digest(self._data, other._data)

    def __hash__(self) -> int:
        raise TypeError("secret values are not hashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret values cannot be pickled")

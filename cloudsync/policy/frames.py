"""How the policy evaluator and its parent talk: length-prefixed pickles over a pipe.

Both ends are cloudsync's own code over a private pipe; what crosses it is documents
and results, so pickle's speed matters more here than its generality.
"""

from __future__ import annotations

import pickle
from typing import IO, Any


def write_frame(stream: IO[bytes], message: Any) -> None:
    """One message: its pickle's length (8 bytes, big-endian), then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message; EOFError when the other side is gone."""
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    size = int.from_bytes(head, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - written by our own parent, over a private pipe

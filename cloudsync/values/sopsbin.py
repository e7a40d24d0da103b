"""The fallback for SOPS files cloudsync cannot open natively: the ``sops`` binary.

Files whose data key only KMS, PGP, Vault or Shamir key groups can recover are handed to
``sops decrypt --output-type json``, whose output is read from a pipe into memory and
never written anywhere. sops prints master key ids and error reasons on stderr, never
values; the last lines of it are shown to the user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from cloudsync.values.secret import SecretValue
from cloudsync.values.sopsfile import Document, Leaf, SopsFormatError, go_json_float

TIMEOUT = 120
STDERR_SHOWN = 400


def find_binary() -> str | None:
    """The ``sops`` executable on PATH, if any."""
    return shutil.which("sops")


def decrypt_with_binary(binary: str, path: Path, fmt: str) -> Document:
    """Decrypt the whole file with the sops binary; raise SopsFormatError when it fails."""
    try:
        proc = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [binary, "decrypt", "--input-type", fmt, "--output-type", "json", str(path)],
            capture_output=True, timeout=TIMEOUT, check=False, env=os.environ.copy())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SopsFormatError(f"the sops binary ({binary}) could not run: {exc.__class__.__name__}") from None
    if proc.returncode != 0:
        raise SopsFormatError(f"the sops binary could not decrypt it: {_reason(proc.stderr)}",
                              hint="check the credentials of the file's KMS / PGP keys for this job")
    try:
        tree = json.loads(proc.stdout)
    except ValueError:
        raise SopsFormatError("the sops binary printed something that is not JSON") from None
    finally:
        proc.stdout = b""  # drop our reference to the plaintext as soon as it is parsed
    return Document(tree=_leaves(tree), source="sops binary")


def _reason(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    text = " ".join(lines[:6]) or "no error message"
    return text[:STDERR_SHOWN] + ("…" if len(text) > STDERR_SHOWN else "")


def _leaves(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _leaves(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_leaves(v) for v in node]
    if node is None:
        return Leaf("null", SecretValue(b""))
    if isinstance(node, bool):
        return Leaf("bool", SecretValue(b"true" if node else b"false"))
    if isinstance(node, int):
        return Leaf("float", SecretValue(str(node)))
    if isinstance(node, float):
        return Leaf("float", SecretValue(go_json_float(node)))
    return Leaf("str", SecretValue(str(node)))

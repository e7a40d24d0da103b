"""Value sources: where a desired plaintext value comes from.

Each source turns a declaration's ``value:`` into a :class:`SecretValue`, or raises a
:class:`CloudsyncError` that points at the declaration and never holds a value. Sources
are registered explicitly in :data:`SOURCES`; new kinds plug in by adding an entry.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import string
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from cloudsync.diagnostics import CloudsyncError
from cloudsync.values.secret import SecretValue

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration
    from cloudsync.config.models import GenerateSpec


@dataclass
class ResolveContext:
    """What sources may use: the stack folder, and a reader of other targets' values."""

    root: Path
    read_remote: Callable[[str, str], SecretValue] | None = None
    cache: dict[str, object] = field(default_factory=dict)


class ValueSource(ABC):
    kind: ClassVar[str]

    @abstractmethod
    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        """The plaintext value for ``decl``; raise CloudsyncError pointing at the declaration."""

    def spec_digest(self, decl: Declaration) -> str | None:
        """A digest of the source's non-secret parameters, when they determine the value."""
        return None


ALPHABETS: dict[str, str] = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
    "printable": string.ascii_letters + string.digits + string.punctuation,
}


def generate_value(spec: GenerateSpec) -> SecretValue:
    alphabet = ALPHABETS[spec.charset]
    return SecretValue("".join(secrets.choice(alphabet) for _ in range(spec.length)))


class Generate(ValueSource):
    """A random value; a new one only when none exists, the spec changes, or rotation is due."""

    kind = "generate"

    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        assert decl.decl.value is not None and decl.decl.value.generate is not None
        return generate_value(decl.decl.value.generate)

    def spec_digest(self, decl: Declaration) -> str | None:
        assert decl.decl.value is not None and decl.decl.value.generate is not None
        spec = decl.decl.value.generate
        return hashlib.sha256(f"generate:v1:{spec.length}:{spec.charset}".encode()).hexdigest()[:12]


class Env(ValueSource):
    """The value of an environment variable of the job that runs cloudsync."""

    kind = "env"

    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        assert decl.decl.value is not None and decl.decl.value.env is not None
        var = decl.decl.value.env
        raw = os.environ.get(var)
        if raw is None:
            raise CloudsyncError(decl.at("value", "env", message=(
                f"environment variable {var} is not set (value of secret {decl.decl.name!r})"),
                hint=f"export {var} in the job that runs cloudsync, or plan with --metadata-only"))
        if raw == "":
            raise CloudsyncError(decl.at("value", "env", message=(
                f"environment variable {var} is empty (value of secret {decl.decl.name!r})"),
                hint="an empty value is almost always a mistake in the pipeline"))
        return SecretValue(raw)


class File(ValueSource):
    """The bytes of a local file, produced by another tool of the pipeline (discouraged)."""

    kind = "file"

    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        assert decl.decl.value is not None and decl.decl.value.file is not None
        path = ctx.root / decl.decl.value.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CloudsyncError(decl.at("value", "file", message=(
                f"cannot read value file {decl.decl.value.file}: {exc.strerror or exc.__class__.__name__}"),
                hint="the path is relative to the stack folder")) from None
        if not data:
            raise CloudsyncError(decl.at("value", "file", message=f"value file {decl.decl.value.file} is empty"))
        return SecretValue(data)


class From(ValueSource):
    """The current value of a secret in another target (one source of truth, fanned out)."""

    kind = "from"

    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        assert decl.decl.value is not None and decl.decl.value.from_ is not None
        spec = decl.decl.value.from_
        if ctx.read_remote is None:
            raise CloudsyncError(decl.at("value", "from", message="values from other targets are not available here"))
        try:
            return ctx.read_remote(spec.target, spec.name)
        except CloudsyncError as exc:
            first = exc.diagnostics[0]
            raise CloudsyncError(decl.at("value", "from", message=(
                f"cannot read {spec.target}:{spec.name} for secret {decl.decl.name!r}: {first.message}"),
                hint=first.hint)) from None


class Sops(ValueSource):
    kind = "sops"

    def resolve(self, decl: Declaration, ctx: ResolveContext) -> SecretValue:
        raise CloudsyncError(decl.at("value", "sops", message="sops value sources are not supported by this build yet",
                                     hint="use env or generate for now"))


SOURCES: dict[str, ValueSource] = {s.kind: s for s in (Generate(), Env(), File(), From(), Sops())}

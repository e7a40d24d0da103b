"""A declaration's value source as a tagged union: one type per kind.

The files' ``value:`` model (:class:`cloudsync.config.models.ValueSpec`) is one class with
a field per kind, all optional, of which validation guarantees exactly one. Code that
handles one kind gets it from :func:`source_of` as its own type, with its fields present
and typed, instead of re-checking the optional fields with ``assert``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloudsync.diagnostics import CloudsyncError

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration
    from cloudsync.config.models import FromSpec, GenerateSpec, PublicKeySpec, ValueSpec


@dataclass(frozen=True)
class GenerateSource:
    spec: GenerateSpec


@dataclass(frozen=True)
class EnvSource:
    var: str


@dataclass(frozen=True)
class SopsSource:
    file: str  # relative to the stack folder
    key: str  # dotted path inside the file


@dataclass(frozen=True)
class FromSource:
    spec: FromSpec


@dataclass(frozen=True)
class FileSource:
    path: str  # relative to the stack folder


@dataclass(frozen=True)
class PublicKeySource:
    spec: PublicKeySpec


Source = GenerateSource | EnvSource | SopsSource | FromSource | FileSource | PublicKeySource


def source_of(value: ValueSpec | None) -> Source | None:
    """The one source a validated ``value:`` names; None when the secret declares no value."""
    if value is None:
        return None
    if value.generate is not None:
        return GenerateSource(value.generate)
    if value.env is not None:
        return EnvSource(value.env)
    if value.sops is not None and value.key is not None:
        return SopsSource(value.sops, value.key)
    if value.from_ is not None:
        return FromSource(value.from_)
    if value.file is not None:
        return FileSource(value.file)
    if value.public_key_of is not None:
        return PublicKeySource(value.public_key_of)
    raise ValueError("a validated ValueSpec names exactly one source")


def generate_spec(decl: Declaration | None) -> GenerateSpec | None:
    """The generator settings of a declaration whose value is generated, else None."""
    source = source_of(decl.decl.value) if decl is not None else None
    return source.spec if isinstance(source, GenerateSource) else None


def generated(decl: Declaration) -> GenerateSpec:
    """The generator settings of ``decl``; an error at the declaration when its value is not generated."""
    spec = generate_spec(decl)
    if spec is None:
        raise CloudsyncError(decl.at("value", message=f"the value of secret {decl.decl.name!r} is not generated"))
    return spec

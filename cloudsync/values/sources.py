"""Value sources: where a desired plaintext value comes from.

:func:`resolve` turns a declaration's ``value:`` into a :class:`SecretValue`, or raises a
:class:`CloudsyncError` that points at the declaration and never holds a value. It
dispatches on the tagged union of :mod:`cloudsync.values.spec`; a new kind is a new type
there and a new case here.

Generated values (:mod:`cloudsync.values.generate`) are the exception: the planner
decides from metadata when a new one is needed, and apply makes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cloudsync.config.files import FileRefused, FileScope
from cloudsync.config.limits import MAX_VALUE_FILE_BYTES
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.values.passwords import ALPHABETS
from cloudsync.values.secret import SecretValue
from cloudsync.values.spec import (
    EnvSource,
    FileSource,
    FromSource,
    GenerateSource,
    PublicKeySource,
    SopsSource,
    source_of,
)

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration
    from cloudsync.config.models import FromSpec, PublicKeySpec

__all__ = ["ALPHABETS", "ResolveContext", "remote_reads", "resolve"]


@dataclass
class ResolveContext:
    """What sources may use: the stack folder, a reader of targets' values, and a per-run cache.

    ``declarations`` (by secret name) lets a source find another declaration's targets.
    ``cache`` lives as long as one run's resolution: each SOPS file is decrypted and each
    remote value read at most once per run.
    """

    root: Path
    read_remote: Callable[[str, str], SecretValue] | None = None
    cache: dict[str, object] = field(default_factory=dict)
    declarations: Mapping[str, Declaration] = field(default_factory=dict)
    # Trust bundles: what a target holds before this run writes (None: nothing), the moment of
    # the plan, and `--grace` of a CA replaced in this apply.
    read_previous: Callable[[str, str], SecretValue | None] | None = None
    now: datetime | None = None
    grace: timedelta | None = None

    def scope_of(self, decl: Declaration) -> FileScope:
        """Where ``decl``'s value files may be: its stack's scope, or the stack folder alone."""
        return decl.scope if decl.scope is not None else FileScope.of(self.root)


def resolve(decl: Declaration, ctx: ResolveContext) -> SecretValue:
    """The plaintext value ``decl`` declares; raise CloudsyncError pointing at the declaration."""
    match source_of(decl.decl.value):
        case EnvSource(var):
            return _env(decl, var)
        case FileSource(path):
            return _file(decl, path, ctx)
        case FromSource(spec):
            return _from(decl, spec, ctx)
        case PublicKeySource(spec):
            return _public_key_of(decl, spec, ctx)
        case SopsSource() as sops:
            from cloudsync.values.sops import resolve_sops  # decryption code loads only for stacks that use it

            return resolve_sops(decl, sops, ctx)
        case GenerateSource():
            raise CloudsyncError(decl.at("value", message=(
                f"the value of secret {decl.decl.name!r} is generated when applied; there is none to read yet")))
        case None:
            raise CloudsyncError(decl.at("name", message=f"secret {decl.decl.name!r} declares no value"))


def remote_reads(decl: Declaration, declarations: Mapping[str, Declaration]) -> list[tuple[str, str]]:
    """The (target, secret) values :func:`resolve` reads from targets for ``decl``, so that the
    engine can read a whole stack's in bulk first: a ``from`` source, the secret a
    ``public_key_of`` derives from, and a trust bundle's own value before this run."""
    match source_of(decl.decl.value):
        case FromSource(spec):
            return [(spec.target, spec.name)]
        case PublicKeySource(spec):
            chosen = _declared_target(declarations, spec.secret, spec.target)
            reads = [(chosen, spec.secret)] if chosen is not None else []
            if spec.format == "bundle" and decl.decl.targets:
                reads.append((decl.decl.targets[0], decl.decl.name))
            return reads
        case _:
            return []


def _env(decl: Declaration, var: str) -> SecretValue:
    """The value of an environment variable of the job that runs cloudsync."""
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


def _file(decl: Declaration, name: str, ctx: ResolveContext) -> SecretValue:
    """The bytes of a local file, produced by another tool of the pipeline (discouraged)."""
    try:
        data = ctx.scope_of(decl).read_bytes(name, limit=MAX_VALUE_FILE_BYTES, what="value file")
    except FileRefused as exc:
        raise CloudsyncError(decl.at("value", "file", message=exc.message,
                                     hint=exc.hint or "the path is relative to the stack folder")) from None
    if not data:
        raise CloudsyncError(decl.at("value", "file", message=f"value file {name} is empty"))
    return SecretValue(data)


def _from(decl: Declaration, spec: FromSpec, ctx: ResolveContext) -> SecretValue:
    """The current value of a secret in another target (one source of truth, fanned out)."""
    try:
        return read_once(ctx, spec.target, spec.name)
    except CloudsyncError as exc:
        first = exc.diagnostics[0]
        raise CloudsyncError(decl.at("value", "from", message=(
            f"cannot read {spec.target}:{spec.name} for secret {decl.decl.name!r}: {first.message}"),
            hint=first.hint)) from None


def _public_key_of(decl: Declaration, spec: PublicKeySpec, ctx: ResolveContext) -> SecretValue:
    """The public half of another declared secret: a public key, or a certificate chain."""
    private = _read_declared(decl, ctx, spec.secret, spec.target, ("value", "public_key_of"))
    if spec.format == "bundle":
        return _trust_bundle(decl, spec, private, ctx)
    try:
        return SecretValue(public_half(private.reveal(), spec.format))
    except ValueError as exc:
        raise CloudsyncError(decl.at("value", "public_key_of", message=(
            f"the value of {spec.secret!r} has no public half for secret {decl.decl.name!r}: {exc}"))) from None


def _trust_bundle(decl: Declaration, spec: PublicKeySpec, ca: SecretValue, ctx: ResolveContext) -> SecretValue:
    """The CA's certificate and the replaced CAs still in their grace (see :mod:`cloudsync.values.trust`)."""
    from cloudsync.values import certs, trust

    try:
        current = certs.parse_issuer(ca.reveal()).certificate
    except certs.BundleError as exc:
        raise CloudsyncError(decl.at("value", "public_key_of", message=(
            f"the value of {spec.secret!r} cannot be a trust bundle for secret {decl.decl.name!r}: {exc}"))) from None
    previous = None
    if ctx.read_previous is not None:
        # The bundle's own first target remembers the old CAs and until when they stay.
        held = ctx.read_previous(decl.decl.targets[0], decl.decl.name)
        previous = held.reveal() if held is not None else None
    now = ctx.now or datetime.now(UTC)
    return SecretValue(trust.bundle(spec.secret, current, previous, now, ctx.grace))


def public_half(data: bytes, fmt: str | None) -> bytes:
    """The public part of a private key or certificate bundle; ValueError (no value) otherwise."""
    from cloudsync.values import certs
    from cloudsync.values.keys import load_private_key, public_text

    if b"-----BEGIN CERTIFICATE-----" in data or data.lstrip().startswith(b"{"):
        try:
            bundle = certs.parse_bundle(data)
        except certs.BundleError as exc:
            raise ValueError(str(exc)) from None
        if fmt in (None, "certificate"):
            return certs.certificates_text(data)
        return public_text(bundle.certificate.public_key(), fmt)
    if fmt == "certificate":
        raise ValueError("it is a key, not a certificate (use format pem or openssh)")
    try:
        key = load_private_key(data)
    except (ValueError, TypeError):
        raise ValueError("it is not a PEM or OpenSSH private key") from None
    return public_text(key.public_key(), fmt or "pem")


def read_once(ctx: ResolveContext, target: str, name: str) -> SecretValue:
    """``target``'s value of ``name``, read at most once per run (failures too)."""
    if ctx.read_remote is None:
        raise CloudsyncError(Diagnostic("values of other targets are not available here"))
    key = f"remote:{target}\0{name}"
    cached = ctx.cache.get(key)
    if isinstance(cached, SecretValue):
        return cached
    if isinstance(cached, CloudsyncError):
        raise CloudsyncError(cached.diagnostics)
    try:
        value = ctx.read_remote(target, name)
    except CloudsyncError as exc:
        # Kept without its traceback, raised as a copy: a raised exception holds the frames
        # that hold this context, a reference cycle that kept a whole plan run alive.
        ctx.cache[key] = CloudsyncError(exc.diagnostics)
        raise
    ctx.cache[key] = value
    return value


def _read_declared(decl: Declaration, ctx: ResolveContext, name: str, target: str | None,
                   at: tuple[str, ...]) -> SecretValue:
    """The current value of another declared secret, from ``target`` or its first target."""
    chosen = _declared_target(ctx.declarations, name, target)
    if chosen is None:
        raise CloudsyncError(decl.at(*at, message=f"secret {name!r} is not declared in this stack"))
    try:
        return read_once(ctx, chosen, name)
    except CloudsyncError as exc:
        first = exc.diagnostics[0]
        raise CloudsyncError(decl.at(*at, message=(
            f"cannot read {chosen}:{name} for secret {decl.decl.name!r}: {first.message}"), hint=first.hint)) from None


def _declared_target(declarations: Mapping[str, Declaration], name: str, target: str | None) -> str | None:
    """Where another declared secret's value is read: ``target``, else its first target."""
    other = declarations.get(name)
    return target or (other.decl.targets[0] if other is not None else None)

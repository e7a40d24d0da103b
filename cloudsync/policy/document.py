"""The policy input document (version 1): what a CEL rule sees, and its JSON Schema.

One document exists per secret × target. Its variables are ``secret``, ``target``,
``principals``, ``stack``, ``change``, ``remote``, ``params`` and ``now``. The schema below
is the single source of truth: ``cloudsync policy schema`` prints it, load-time checks
resolve every field a rule references against it, and policy test documents are
validated with it. The document never holds a secret value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloudsync.config.checks import effective_readers
from cloudsync.config.models import as_timedelta
from cloudsync.policy.params import INT64_MAX, INT64_MIN, json_type
from cloudsync.providers.registry import all_rules, kinds

if TYPE_CHECKING:
    from cloudsync.config.loader import Declaration, Stack
    from cloudsync.config.models import Principal, StackFile
    from cloudsync.plan.model import Change
    from cloudsync.providers.base import RemoteSecret

INPUT_VERSION = 1
PROVIDERS = kinds()
# Variables that depend on the target: a policy that reads none of them has one result per
# secret, shared by all of its targets (see engine.PER_TARGET_ROOTS).
TARGET_ROOTS = frozenset({"target", "change", "remote"})

Schema = dict[str, Any]

# --- schema helpers ------------------------------------------------------------------------


def _obj(doc: str, /, **props: Schema) -> Schema:
    return {"type": "object", "description": doc, "properties": props,
            "required": sorted(props), "additionalProperties": False}


def _map(value: Schema, description: str) -> Schema:
    return {"type": "object", "description": description, "additionalProperties": value}


def _array(items: Schema, description: str) -> Schema:
    return {"type": "array", "description": description, "items": items}


def _scalar(kind: str, description: str) -> Schema:
    return {"type": kind, "description": description}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


STR = "string"
_LABELS = _map(_scalar(STR, "label value"), "labels (lowercase keys)")
_ENV = _scalar(STR, "environment: 'prod', 'staging', 'dev', 'test', 'sandbox', or '' when unknown")

SECRET_SCHEMA = _obj(
    "the secret as declared, with stack defaults applied",
    name=_scalar(STR, "logical name, e.g. payments/db-password"),
    description=_nullable(_scalar(STR, "description")),
    labels=_LABELS,
    env=_ENV,
    readers=_array(_scalar(STR, "principal name"), "principals that may read the value (defaults applied)"),
    readers_resolved=_map(_array(_scalar(STR, "principal id"), "ids in that cloud"),
                          f"per provider ({', '.join(PROVIDERS)}): the readers' ids in that cloud"),
    value=_obj("where the value comes from (never the value)",
               kind=_scalar(STR, "generate, sops, env, from, file, or none (metadata-only secret)"),
               generate=_nullable(_obj("generator settings when kind is generate",
                                       type=_scalar(STR, "password, ed25519, rsa, ecdsa, ca or certificate"),
                                       length=_scalar("integer", "characters (passwords)"),
                                       charset=_scalar(STR, "alphanumeric, hex, base64url or printable")))),
    rotation_days=_nullable(_scalar("number", "rotation period in days (12h is 0.5)")),
    expires_days=_nullable(_scalar("number", "expiry period in days")),
    deletion_protection=_scalar("boolean", "deletion protection (defaults applied)"),
    purge_on_delete=_scalar("boolean", "deleted without a recovery window"),
    certificate=_nullable(_obj("certificate facts when the value is a certificate (null until supported)",
                               not_after=_scalar(STR, "RFC 3339 end of validity"),
                               days_left=_scalar("integer", "whole days from now to not_after"))),
    file=_scalar(STR, "file of the declaration"),
    line=_scalar("integer", "line of the declaration"),
)
TARGET_SCHEMA = _obj(
    "the target this document is about",
    name=_scalar(STR, "target name"),
    provider=_scalar(STR, f"{', '.join(PROVIDERS[:-1])} or {PROVIDERS[-1]}"),
    env=_ENV,
    labels=_LABELS,
)
PRINCIPAL_SCHEMA = _obj(
    "one declared principal",
    **{r.kind: _nullable(_scalar(STR, r.principal_field.description or "id")) for r in all_rules()},
    env=_ENV,
    labels=_LABELS,
)
CHANGE_SCHEMA = _obj(
    "the planned change of this address (null in `policy check`)",
    action=_scalar(STR, "create, update, delete, restore or noop"),
    reasons=_array(_scalar(STR, "value, labels, description, access, expiry, rotation, replication, ownership, replace"),
                   "why the address changes"),
    remote_name=_scalar(STR, "name inside the target"),
)
REMOTE_SCHEMA = _obj(
    "actual metadata in the target (null when unknown or the secret does not exist)",
    name=_scalar(STR, "remote name"),
    labels=_LABELS,
    managed=_scalar("boolean", "carries managed-by=cloudsync"),
    owner=_nullable(_scalar(STR, "owning stack")),
    description=_nullable(_scalar(STR, "description")),
    expires_at=_nullable(_scalar(STR, "RFC 3339 expiry")),
    readers=_nullable(_array(_scalar(STR, "principal id"), "ids granted read (null when not read)")),
    other_access=_array(_scalar(STR, "grant"), "grants outside cloudsync's model"),
    deleted=_scalar("boolean", "soft-deleted or scheduled for deletion"),
    protected=_scalar("boolean", "deletion protection"),
    effective_readers=_array(_obj(
        "one principal that can read the value, and the grant that lets it",
        principal=_scalar(STR, "the principal's id in this cloud"),
        name=_nullable(_scalar(STR, "the declared principal with this id, if any")),
        declared=_scalar("boolean", "the secret declares this principal among its readers"),
        via=_scalar(STR, "secret, vault, resource-group, subscription, management-group, project, folder, "
                         "organization, account or access-policy"),
        scope=_scalar(STR, "where the grant is bound"),
        grant=_scalar(STR, "the role or policy (and statement) that grants the read"),
        conditional=_scalar("boolean", "a condition decides at request time whether the grant applies"),
    ), "everyone who can read the value, through the secret's own grants and broader scopes"),
    readers_complete=_scalar("boolean", "every source of effective_readers was read (false: others may read too)"),
)


def input_schema(params: Schema | None = None) -> Schema:
    """The JSON Schema of the input document; ``params`` is one policy's parameter object."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:cloudsync:policy-input:{INPUT_VERSION}",
        "title": f"cloudsync policy input document, version {INPUT_VERSION}",
        **_obj(
            "what a policy's match and rule expressions see, for one secret in one target",
            secret=SECRET_SCHEMA,
            target=TARGET_SCHEMA,
            principals=_map(PRINCIPAL_SCHEMA, "every declared principal, by name"),
            stack=_obj("the stack", name=_scalar(STR, "stack name"),
                       targets=_array(_scalar(STR, "target name"), "declared targets")),
            change=_nullable(CHANGE_SCHEMA),
            remote=_nullable(REMOTE_SCHEMA),
            params=params or _map({}, "the policy's parameters after stack overrides"),
            now=_scalar(STR, "RFC 3339 time of the evaluation (UTC); use timestamp(now)"),
        ),
    }


def params_schema(defaults: Mapping[str, Any]) -> Schema:
    """A closed object schema for one policy's parameters, typed by their defaults."""
    props: dict[str, Schema] = {}
    for name, value in defaults.items():
        props[name] = _scalar(json_type(value), "parameter")
        if isinstance(value, list):
            props[name]["items"] = _scalar(json_type(value[0]), "item") if value else {}
    return _obj("the policy's parameters after stack overrides", **props)


# --- environments --------------------------------------------------------------------------

_ENV_WORDS = {"prod": "prod", "production": "prod", "prd": "prod", "live": "prod",
              "staging": "staging", "stage": "staging", "stg": "staging",
              "dev": "dev", "development": "dev", "test": "test", "qa": "test", "sandbox": "sandbox"}
_SEGMENTS = re.compile(r"[-_./]")


def environment_of(name: str, labels: Mapping[str, str] | None = None) -> str:
    """A target's or principal's environment: its ``env`` label, else a word in its name.

    Targets and principals carry no labels yet, so ``aws-prod``, ``gcp-dev-eu`` and
    ``payments-api-prod`` name their environment; a name without one yields ``''``,
    which prod-only policies treat as not prod (fail safe).
    """
    if labels and labels.get("env"):
        return labels["env"]
    for segment in _SEGMENTS.split(name.lower()):
        if segment in _ENV_WORDS:
            return _ENV_WORDS[segment]
    return ""


# --- builders ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _days(duration: str | None) -> float | None:
    """``30d`` → 30.0, ``12h`` → 0.5; cached because a stack repeats a handful of durations."""
    delta = as_timedelta(duration)
    return delta.total_seconds() / 86400 if delta is not None else None


def principal_ids(principal: Principal, name: str) -> dict[str, str | None]:
    """The principal's id in every registered provider (None where it declares none)."""
    return {rules.kind: rules.principal_id(principal, name) for rules in all_rules()}


def principals_document(config: StackFile) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for name, principal in config.principals.items():
        labels = dict(getattr(principal, "labels", None) or {})  # labels arrive with a later core change
        docs[name] = {**principal_ids(principal, name), "env": environment_of(name, labels), "labels": labels}
    return docs


def stack_document(stack: Stack) -> dict[str, Any]:
    return {"name": stack.name, "targets": list(stack.config.targets)}


def target_document(name: str, config: Any) -> dict[str, Any]:
    labels = dict(getattr(config, "labels", None) or {})
    return {"name": name, "provider": config.provider, "env": environment_of(name, labels), "labels": labels}


def resolved_ids(config: StackFile) -> dict[str, dict[str, str | None]]:
    """Every declared principal's id per provider (computed once per run, not per secret)."""
    return {name: principal_ids(principal, name) for name, principal in config.principals.items()}


def secret_document(stack: Stack, decl: Declaration,
                    ids: Mapping[str, Mapping[str, str | None]] | None = None) -> dict[str, Any]:
    """The declared secret with stack defaults applied (no value, ever)."""
    config = stack.config
    defaults = config.defaults
    d = decl.decl
    labels = {**defaults.labels, **d.labels}
    readers = effective_readers(stack, decl)
    ids = ids if ids is not None else resolved_ids(config)
    resolved: dict[str, list[str]] = {p: [] for p in PROVIDERS}
    for reader in readers:
        reader_ids = ids.get(reader)
        if reader_ids is None:
            continue  # the loader reports unknown principals; CS002 covers input documents
        for provider, ident in reader_ids.items():
            if ident is not None:
                resolved[provider].append(ident)
    spec = d.value
    generate = None
    if spec is not None and spec.generate is not None:
        generate = {"type": spec.generate.type, "length": spec.generate.length, "charset": spec.generate.charset}
    protected = d.deletion_protection if d.deletion_protection is not None else defaults.deletion_protection
    return {
        "name": d.name,
        "description": d.description,
        "labels": labels,
        "env": labels.get("env", ""),
        "readers": readers,
        "readers_resolved": resolved,
        "value": {"kind": spec.kind if spec is not None else "none", "generate": generate},
        "rotation_days": _days(d.rotation or defaults.rotation),
        "expires_days": _days(d.expires or defaults.expires),
        "deletion_protection": protected,
        "purge_on_delete": d.purge_on_delete,
        "certificate": _certificate(spec.generate if spec is not None else None),
        "file": decl.file,
        "line": decl.line,
    }


def change_document(change: Change | None) -> dict[str, Any] | None:
    if change is None:
        return None
    return {"action": change.action.value, "reasons": [r.value for r in change.reasons],
            "remote_name": change.remote_name}


def _rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _certificate(generate: Any) -> dict[str, Any] | None:
    """Facts of a generated CA or certificate, as issued: its lifetime from now.

    cloudsync renews a certificate once two thirds of its lifetime have passed, so the
    declared lifetime bounds what any issued certificate has left.
    """
    if generate is None or generate.type not in ("ca", "certificate"):
        return None
    days = generate.days or (3650 if generate.type == "ca" else 90)
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    return {"not_after": _rfc3339(not_after), "days_left": days}


def remote_document(remote: RemoteSecret | None, effective: Sequence[Mapping[str, Any]] = (),
                    complete: bool = False) -> dict[str, Any] | None:
    """The actual secret; ``effective`` are its resolved effective readers (see access.model.reader_documents)."""
    if remote is None:
        return None
    return {
        "name": remote.name, "labels": dict(remote.labels), "managed": remote.managed, "owner": remote.owner,
        "description": remote.description, "expires_at": _rfc3339(remote.expires_at),
        "readers": sorted(remote.readers) if remote.readers is not None else None,
        "other_access": list(remote.other_access), "deleted": remote.deleted, "protected": remote.protected,
        "effective_readers": [dict(r) for r in effective], "readers_complete": complete,
    }


def now_text(moment: datetime) -> str:
    return _rfc3339(moment) or ""


# --- samples and validation ----------------------------------------------------------------


def sample(schema: Schema) -> Any:
    """A fully populated document of ``schema`` (nullable parts present) for load-time checks."""
    kinds = schema.get("type")
    kind = next((k for k in kinds if k != "null"), None) if isinstance(kinds, list) else kinds
    if kind == "object":
        if "properties" in schema:
            return {name: sample(sub) for name, sub in schema["properties"].items()}
        return {"sample": sample(schema.get("additionalProperties") or {})}
    if kind == "array":
        return [sample(schema.get("items") or {})]
    return {"string": "sample", "integer": 1, "number": 1.0, "boolean": True}.get(kind or "", "sample")


def validate(data: Any, schema: Schema, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of ``data`` against ``schema``: (path, message) pairs; types and closed keys only."""
    kinds = schema.get("type")
    if kinds is None:
        return []
    allowed = set(kinds) if isinstance(kinds, list) else {kinds}
    actual = json_type(data)
    if actual == "integer" and "number" in allowed:
        actual = "number"
    if actual not in allowed:
        return [(path, f"expected {' or '.join(sorted(allowed))}, got {json_type(data)}")]
    if isinstance(data, int) and not isinstance(data, bool) and not INT64_MIN <= data <= INT64_MAX:
        return [(path, "an integer outside the 64-bit range CEL computes with")]
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(data, dict):
        props = schema.get("properties")
        for key, value in data.items():
            if props is not None:
                if key not in props:
                    problems.append(((*path, key), f"unknown key {key!r}"))
                    continue
                problems += validate(value, props[key], (*path, key))
            else:
                problems += validate(value, schema.get("additionalProperties") or {}, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            problems += validate(item, schema.get("items") or {}, (*path, i))
    return problems

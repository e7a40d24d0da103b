"""Pydantic models of the desired-state files (``cloudsync.yaml``, ``secrets/*.yaml``).

The models validate structure and single-field rules. Rules that need the whole stack
(references to targets and principals, duplicate names, remote-name collisions) live in
:mod:`cloudsync.config.checks`, so that every problem is reported in one run.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, create_model, model_validator

from cloudsync.config.booleans import Flag
from cloudsync.config.durations import DURATION_RE, parse_duration
from cloudsync.config.fields import Labels, PathText, Strict
from cloudsync.config.limits import shown
from cloudsync.providers.registry import all_rules

if TYPE_CHECKING:
    from cloudsync.providers.rules import TargetModel

STACK_RE = r"^[a-z0-9-]{1,40}$"
TARGET_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
PRINCIPAL_RE = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")
SECRET_NAME_MAX = 255


def _check_duration(text: Any) -> str:
    # Before pydantic's own type check: `rotation: 30` gets a duration's message, not "a valid string".
    parse_duration(text)
    return str(text)


Duration = Annotated[
    str,
    BeforeValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_RE.pattern, "examples": ["30d", "12h", "90min", "3mo"],
                    "description": "a whole number and a unit: min, h, d, w (7d), mo (30d), y (365d); "
                                   "'m' alone is refused (minutes or months?)"}),
]


def _check_secret_name(name: str) -> str:
    if len(name) > SECRET_NAME_MAX or not SECRET_NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid secret name {shown(name)}: use path segments of letters, digits, '_', '.' and '-' "
            "separated by '/', e.g. payments/db-password"
        )
    return name


SecretName = Annotated[
    str,
    AfterValidator(_check_secret_name),
    WithJsonSchema({"type": "string", "pattern": SECRET_NAME_RE.pattern, "maxLength": SECRET_NAME_MAX}),
]


def _check_name_overrides(names: dict[str, str]) -> dict[str, str]:
    for target, remote in names.items():
        if not remote:
            raise ValueError(f"empty name override for target {shown(target)}: remove it to use the translated "
                             "name, or write the remote name")
    return names


# A reference to a target, principal or policy by name. Names are at most 63 characters; the
# bound keeps a hostile reference from being quoted at full length in every message about it.
Ref = Annotated[str, Field(max_length=128)]


# --- targets and principals: one model and one id per registered provider -------------
# Built from the registry, so adding a provider needs no change here (docs/providers/README.md).
# The type checker sees what every target and every principal has; the core reads no more.

if TYPE_CHECKING:
    TargetConfig: TypeAlias = TargetModel

    class Principal(Strict):
        """One identity, named once, with its id in each cloud (``rules_for(kind).principal_id``)."""

        labels: dict[str, str]
else:
    _TARGET_MODELS = tuple(r.config_model for r in all_rules())
    TargetConfig = Annotated[Union[_TARGET_MODELS], Field(discriminator="provider")]  # noqa: UP007 - a run-time tuple
    Principal = create_model(
        "Principal", __base__=Strict, __module__=__name__,
        __doc__="One identity, named once, with its id in each cloud.",
        **{r.kind: (str | None, r.principal_field) for r in all_rules()},
        labels=(Labels, Field(default_factory=dict, description="e.g. {env: prod}, read by policies")),
    )


# --- values --------------------------------------------------------------------------

CHARSETS = ("alphanumeric", "hex", "base64url", "printable")
CHARACTER_CLASSES = ("upper", "lower", "digit", "symbol")
_FIELDS_BY_TYPE: dict[str, frozenset[str]] = {
    "password": frozenset({"length", "charset", "require", "exclude"}),
    "ed25519": frozenset({"format"}),
    "rsa": frozenset({"bits", "format"}),
    "ecdsa": frozenset({"curve", "format"}),
    "ca": frozenset({"key_type", "bits", "curve", "common_name", "days", "format"}),
    "certificate": frozenset({"key_type", "bits", "curve", "common_name", "days", "format", "ca", "dns_names",
                              "usage"}),
}
_KEY_FORMATS = {"ed25519": ("pem", "openssh"), "rsa": ("pem", "openssh"), "ecdsa": ("pem", "openssh"),
                "ca": ("pem", "json"), "certificate": ("pem", "json")}


class GenerateSpec(Strict):
    """A value cloudsync generates: a password, a private key or a certificate.

    Regenerated when ``rotation`` is due or a setting changes; certificates also once
    two thirds of their lifetime have passed. Which keys apply depends on ``type``.
    """

    type: Literal["password", "ed25519", "rsa", "ecdsa", "ca", "certificate"] = Field(
        "password", description="password (default), a private key (ed25519, rsa, ecdsa), a CA, or a certificate")
    length: int = Field(32, ge=8, le=4096, description="password: number of characters")
    charset: Literal["alphanumeric", "hex", "base64url", "printable"] = Field(
        "alphanumeric", description="password: the characters drawn from")
    require: list[Literal["upper", "lower", "digit", "symbol"]] = Field(
        default_factory=list, description="password: character classes that must each appear at least once")
    exclude: str = Field("", max_length=256, description="password: characters never used (e.g. ambiguous ones)")
    bits: Literal[2048, 3072, 4096] | None = Field(None, description="rsa keys: modulus size (default 3072)")
    curve: Literal["p256", "p384"] | None = Field(None, description="ecdsa keys: curve (default p256)")
    key_type: Literal["ed25519", "rsa", "ecdsa"] | None = Field(
        None, description="ca / certificate: the key type (default ecdsa, curve p256)")
    common_name: str | None = Field(None, min_length=1, max_length=64, description="ca / certificate: subject CN")
    days: int | None = Field(None, ge=1, le=36500, description="ca / certificate: validity (default 3650 / 90)")
    ca: SecretName | None = Field(None, description="certificate: the declared secret (type ca) that signs it; "
                                  "omitted: self-signed")
    dns_names: list[str] = Field(default_factory=list, description="certificate: subject alternative DNS names")
    usage: Literal["client", "server", "both"] | None = Field(
        None, description="certificate: extended key usage (default client, for mTLS)")
    format: Literal["pem", "openssh", "json"] | None = Field(
        None, description="keys: pem (PKCS#8, default) or openssh; ca / certificate: pem (default) or json")

    @model_validator(mode="after")
    def _fits_type(self) -> GenerateSpec:
        allowed = _FIELDS_BY_TYPE[self.type]
        stray = sorted(n for n in self.model_fields_set - {"type"} if n not in allowed)
        if stray:
            raise ValueError(f"{', '.join(repr(n) for n in stray)} cannot be used with type {self.type}; "
                             f"type {self.type} takes {', '.join(sorted(allowed))}")
        if self.format is not None and self.format not in _KEY_FORMATS.get(self.type, ()):
            raise ValueError(f"format {self.format} does not apply to type {self.type}; "
                             f"use one of {', '.join(_KEY_FORMATS[self.type])}")
        key_type = self.key_type or ("ecdsa" if self.type in ("ca", "certificate") else self.type)
        if self.bits is not None and key_type != "rsa":
            raise ValueError("'bits' goes with rsa keys")
        if self.curve is not None and key_type != "ecdsa":
            raise ValueError("'curve' goes with ecdsa keys")
        if self.type in ("ca", "certificate") and self.common_name is None:
            raise ValueError(f"a {self.type} needs common_name")
        if self.type == "password":
            self._check_password()
        return self

    def _check_password(self) -> None:
        from cloudsync.values.passwords import alphabet, class_members

        chars = alphabet(self.charset, self.exclude)
        if len(chars) < 2:
            raise ValueError(f"charset {self.charset} without the excluded characters leaves fewer than 2 characters")
        missing = [c for c in self.require if not class_members(c, chars)]
        if missing:
            raise ValueError(f"charset {self.charset} (minus excluded characters) has no {', '.join(missing)} "
                             "characters, so 'require' cannot be met")
        if len(set(self.require)) > self.length:
            raise ValueError("'require' names more classes than the password has characters")


class FromSpec(Strict):
    """The value of a secret in another target."""

    target: Ref = Field(description="the target to read the value from")
    name: SecretName = Field(description="the secret's logical name (as declared) in that target")


def _or_secret_name(schema: dict[str, Any]) -> None:
    """In the JSON Schema, ``public_key_of`` also takes the secret's name alone."""
    full = dict(schema)
    schema.clear()
    schema["anyOf"] = [{"type": "string", "pattern": SECRET_NAME_RE.pattern}, full]


class PublicKeySpec(Strict):
    """The public half of another declared secret (a generated key, CA or certificate)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, json_schema_extra=_or_secret_name)

    secret: SecretName = Field(description="the declared secret holding the private half")
    target: Ref | None = Field(None, description="the target to read it from (default: its first target)")
    format: Literal["pem", "openssh", "certificate", "bundle"] | None = Field(
        None, description="pem: SubjectPublicKeyInfo; openssh: authorized_keys line; certificate: the certificate "
        "chain; bundle (of a ca): its certificate and the CAs it replaced, during their grace. Default: "
        "certificate for a ca / certificate secret, pem for a key")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"secret": data} if isinstance(data, str) else data


class ValueSpec(Strict):
    """Where the desired value comes from: exactly one source."""

    generate: GenerateSpec | None = Field(None, description="cloudsync generates the value: a password, key, CA or "
                                          "certificate")
    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                            description="an environment variable of the job; missing or empty is an error")
    sops: PathText | None = Field(None, description="a SOPS-encrypted YAML or JSON file, relative to the stack folder")
    key: str | None = Field(None, max_length=1024, description="dotted path inside the sops file (or sops --extract syntax)")
    from_: FromSpec | None = Field(None, alias="from", description="the current value of a secret in another target")
    file: PathText | None = Field(None, description="a file relative to the stack folder (or in a directory of "
                                  "files.allow), at most 64 KiB")
    public_key_of: PublicKeySpec | None = Field(
        None, description="the public half of another declared secret: `other/secret` or {secret, target, format}")

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSpec:
        chosen = [n for n in VALUE_SOURCES if getattr(self, n) is not None]
        if len(chosen) != 1:
            names = ", ".join(n.rstrip("_") for n in chosen) or "none"
            raise ValueError(
                f"a value needs exactly one source of generate, sops, env, from, file, public_key_of (got {names})"
            )
        if self.key is not None and self.sops is None:
            raise ValueError("'key' goes with 'sops'")
        if self.sops is not None and not self.key:
            raise ValueError("a sops value needs 'key', the dotted path of the value in the file")
        if self.key:
            from cloudsync.values.sopsfile import parse_key_path

            try:
                parse_key_path(self.key)
            except ValueError as exc:
                raise ValueError(f"bad sops key path {shown(self.key)}: {exc}") from None
        return self

    @property
    def kind(self) -> str:
        for name in VALUE_SOURCES:
            if getattr(self, name) is not None:
                return name.rstrip("_")
        raise AssertionError("validated ValueSpec has a source")


VALUE_SOURCES = ("generate", "env", "sops", "from_", "file", "public_key_of")


DEFAULT_GRACE = timedelta(days=1)


def _grace_zero(value: Any) -> Any:
    # `grace: 0` reads as the integer 0 in YAML: the one number a grace may be written as.
    return "0" if isinstance(value, int) and not isinstance(value, bool) and value == 0 else value


def _check_grace(text: str) -> str:
    return "0" if text in ("0", "0d", "0h", "0m") else _check_duration(text)


Grace = Annotated[
    str,
    BeforeValidator(_grace_zero),
    AfterValidator(_check_grace),
    WithJsonSchema({"type": ["string", "integer"], "pattern": r"^(0|[1-9][0-9]{0,5}[dhm])$",
                    "examples": ["1d", "12h", 0]}),
]


class Rotation(Strict):
    """How often the value changes, who changes it, and how long the previous value stays usable."""

    every: Duration = Field(description="a new value is due this long after the last one")
    by: Literal["cloudsync", "external"] = Field(
        "cloudsync", description="cloudsync regenerates it; external: another system rotates it (a rotation "
        "Lambda, a database operator) and cloudsync only reports an overdue rotation")
    grace: Grace | None = Field(
        None, description="how long the previous version stays enabled after cloudsync writes a new value "
        "(default 1d); a later apply then disables it. 0: in the same apply")

    @model_validator(mode="after")
    def _grace_fits(self) -> Rotation:
        if self.grace is None:
            return self
        if self.by == "external":
            raise ValueError("grace applies only to values cloudsync writes; with by: external, the system that "
                             "rotates the value decides when old versions stop working")
        if parse_grace(self.grace) >= parse_duration(self.every):
            raise ValueError(f"grace {self.grace} must be shorter than the rotation period {self.every}: "
                             "otherwise old versions pile up, each still enabled when the next one is written")
        return self


def parse_grace(text: str) -> timedelta:
    return timedelta(0) if text == "0" else parse_duration(text)


def rotation_grace(rotation: str | Rotation | None) -> timedelta:
    """How long a superseded version stays enabled (``rotation: 30d`` alone: :data:`DEFAULT_GRACE`)."""
    if isinstance(rotation, Rotation) and rotation.grace is not None:
        return parse_grace(rotation.grace)
    return DEFAULT_GRACE


# One error per mistake: a mapping is checked as Rotation, anything else as a duration.
RotationSetting = Annotated[
    Annotated[Duration, Tag("duration")] | Annotated[Rotation, Tag("rotation")],
    Discriminator(lambda v: "rotation" if isinstance(v, dict | Rotation) else "duration"),
]


# --- secrets -------------------------------------------------------------------------


class SecretDecl(Strict):
    """One logical secret as declared."""

    name: SecretName = Field(description="logical name: '/'-separated segments of letters, digits, '_', '.', '-', "
                             "e.g. payments/db-password; unique in the stack")
    description: str | None = Field(None, max_length=2048, description="free text, written to every cloud")
    targets: list[Ref] = Field(min_length=1, description="the targets it lives in (at least one)")
    labels: Labels = Field(default_factory=dict, description="keys [a-z][a-z0-9_-]{0,62}, values [a-z0-9_-]{0,63}, "
                           "so the same labels land in every cloud; managed-by and cloudsync* are reserved")
    value: ValueSpec | None = Field(None, description="omitted: a metadata-only secret whose value is set elsewhere")
    rotation: RotationSetting | None = Field(
        None, description="30d (cloudsync rotates), or {every: 30d, by: cloudsync | external, grace: 1d}")
    expires: Duration | None = Field(None, description="expiry metadata, counted from when the value was written")
    readers: list[Ref] | None = Field(None, description="principals that may read the value, and nobody else "
                                      "(default: defaults.readers)")
    deletion_protection: Flag | None = Field(None, description="not deleted when its declaration is removed "
                                             "(default: defaults.deletion_protection)")
    purge_on_delete: Flag = Field(
        False, description="delete without a recovery window (AWS force delete, Azure purge)"
    )
    names: Annotated[dict[Ref, Annotated[str, Field(max_length=512)]], AfterValidator(_check_name_overrides)] = Field(
        default_factory=dict, description="per-target remote name override")
    adopt: Flag = Field(
        False, description="take ownership of an existing unowned secret of this name (written by cloudsync import)")

    @model_validator(mode="before")
    @classmethod
    def _no_plaintext(cls, data: Any) -> Any:
        if isinstance(data, dict) and "value" in data and not isinstance(data["value"], dict | None):
            raise ValueError(
                "plaintext literal values are not allowed in desired-state files; "
                "use value: {generate: ...}, {env: VAR}, {sops: file, key: path}, {from: ...} or {file: path}"
            )
        return data


class Defaults(Strict):
    """Settings every secret of the stack gets unless it says otherwise."""

    labels: Labels = Field(default_factory=dict, description="labels added to every secret's own")
    rotation: Duration | None = Field(default=None, description="rotation period of secrets that declare none")
    expires: Duration | None = Field(default=None, description="expiry of secrets that declare none")
    readers: list[Ref] = Field(default_factory=list, description="readers of secrets that declare none")
    deletion_protection: Flag = Field(default=False, description="protect every secret from deletion unless it says otherwise")


class PolicyConfig(Strict):
    """Per-stack settings of the policy engine."""

    disabled: list[Ref] = Field(default_factory=list, description="policy ids turned off for this stack")
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per policy id, values for the policy's parameters")
    dirs: list[PathText] = Field(default_factory=list, description="extra policy folders, relative to the stack")
    builtin: Flag = Field(default=True, description="evaluate the built-in pack (false: only the stack's own policies)")


DriftKindName = Literal["value", "metadata", "access", "missing", "orphan", "unmanaged", "inherited"]
ALL_DRIFT_KINDS: tuple[DriftKindName, ...] = ("value", "metadata", "access", "missing", "orphan", "unmanaged",
                                             "inherited")


class DriftIgnore(Strict):
    """Known drift to leave out of reports, with a reason and an end date."""

    address: str = Field(description="address glob, e.g. 'aws-prod:legacy/*'")
    kinds: list[DriftKindName] = Field(default_factory=lambda: list(ALL_DRIFT_KINDS),
                                       description="the drift kinds to leave out (default: all)")
    reason: str = Field(min_length=3, description="why this drift is known and accepted (shown in reports)")
    expires: date = Field(description="the date (YYYY-MM-DD) after which the drift is reported again")


class DriftConfig(Strict):
    """``drift:`` settings: the name scope for unmanaged secrets, and ignore entries."""

    scope: list[str] | None = Field(
        default=None, description="logical name prefixes whose unowned secrets are reported as unmanaged; "
                          "default: the first path segment of every declared name")
    ignore: list[DriftIgnore] = Field(default_factory=list, description="known drift to leave out of reports")


class IgnoreFile(Strict):
    """``.cloudsyncignore``: the same entries as ``drift.ignore``."""

    ignore: list[DriftIgnore] = Field(default_factory=list)


def _integer_version(value: Any) -> Any:
    # Lax validation would take `true` and `1.0` for 1: a file format version is the integer itself.
    if type(value) is not int:
        raise ValueError(f"invalid version {shown(value)}: expected the integer 1")
    return value


class FilesConfig(Strict):
    """``files:``: directories outside the stack folder that its files may name (reviewable in the PR)."""

    allow: list[PathText] = Field(
        default_factory=list, description="directories a value file, sops file, policy folder or local store may be "
        "in besides the stack folder, e.g. /run/secrets (absolute, or relative to the stack folder)")


class StackFile(Strict):
    """``cloudsync.yaml``."""

    version: Annotated[Literal[1], BeforeValidator(_integer_version)] = Field(description="file format version: 1")
    stack: str = Field(pattern=STACK_RE, description="the stack's name, written as the cloudsync-stack label on every "
                       "secret it manages")
    targets: dict[Annotated[str, Field(pattern=TARGET_RE)], TargetConfig] = Field(
        min_length=1, description="where secrets live: target name -> provider and its settings")
    principals: dict[Annotated[str, Field(pattern=PRINCIPAL_RE)], Principal] = Field(
        default_factory=dict, description="identities, named once, with one id per cloud they are used in")
    defaults: Defaults = Field(default_factory=Defaults, description="settings applied to every secret")
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="policy engine settings")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="drift report settings")
    files: FilesConfig = Field(default_factory=FilesConfig, description="directories outside the stack folder its "
                               "files may name")
    secrets: list[dict[str, Any]] = Field(default_factory=list, description="secret declarations (also in "
                                          "secrets/*.yaml)")


class SecretsFile(Strict):
    """``secrets/*.yaml``."""

    secrets: list[dict[str, Any]] = Field(default_factory=list, description="secret declarations")


def as_timedelta(duration: str | Rotation | None) -> timedelta | None:
    """A duration (or a rotation's period) as a timedelta."""
    if isinstance(duration, Rotation):
        duration = duration.every
    return parse_duration(duration) if duration is not None else None


def rotation_owner(rotation: str | Rotation | None) -> Literal["cloudsync", "external"]:
    """Who changes the value when rotation is due (``30d`` alone means cloudsync)."""
    return rotation.by if isinstance(rotation, Rotation) else "cloudsync"

"""Pydantic models of the desired-state files (``cloudsync.yaml``, ``secrets/*.yaml``).

The models validate structure and single-field rules. Rules that need the whole stack
(references to targets and principals, duplicate names, remote-name collisions) live in
:mod:`cloudsync.config.checks`, so that every problem is reported in one run.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from cloudsync.config.durations import DURATION_RE, parse_duration

STACK_RE = r"^[a-z0-9-]{1,40}$"
TARGET_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
PRINCIPAL_RE = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$")
SECRET_NAME_MAX = 255
# GCP's label rules are the strictest of the three clouds, so labels follow them everywhere.
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_LABEL_PREFIXES = ("managed-by", "cloudsync")


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_RE.pattern, "examples": ["30d", "12h", "90m"]}),
]


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key):
            raise ValueError(
                f"invalid label key {key!r}: keys are lowercase, start with a letter, and use "
                "only a-z, 0-9, '_' and '-' (at most 63 characters) so they are valid in every cloud"
            )
        if key.startswith(RESERVED_LABEL_PREFIXES):
            raise ValueError(f"label key {key!r} is reserved for cloudsync's ownership metadata")
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            raise ValueError(
                f"invalid value {value!r} for label {key!r}: values use only a-z, 0-9, '_' and '-' "
                "(at most 63 characters)"
            )
    return labels


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]


def _check_secret_name(name: str) -> str:
    if len(name) > SECRET_NAME_MAX or not SECRET_NAME_RE.match(name):
        raise ValueError(
            f"invalid secret name {name!r}: use path segments of letters, digits, '_', '.' and '-' "
            "separated by '/', e.g. payments/db-password"
        )
    return name


SecretName = Annotated[
    str,
    AfterValidator(_check_secret_name),
    WithJsonSchema({"type": "string", "pattern": SECRET_NAME_RE.pattern, "maxLength": SECRET_NAME_MAX}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- targets -------------------------------------------------------------------------


class LocalTarget(Strict):
    """The embedded store: a SQLite file, values encrypted at rest."""

    provider: Literal["local"]
    path: str = Field(".cloudsync/local.db", description="store file, relative to the stack folder")


class AwsTarget(Strict):
    """An AWS account and region (Secrets Manager)."""

    provider: Literal["aws"]
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    profile: str | None = None
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    endpoint: str | None = Field(None, description="emulator or VPC endpoint; http only for loopback")
    kms_key_id: str | None = None
    recovery_window_days: int = Field(30, ge=7, le=30)
    replica_regions: list[str] = Field(default_factory=list)


class GcpTarget(Strict):
    """A GCP project (Secret Manager)."""

    provider: Literal["gcp"]
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    location: str | None = Field(None, description="regional secrets in this location")
    endpoint: str | None = Field(None, description="host:port; insecure gRPC only for loopback")
    replication: list[str] = Field(
        default_factory=list, description="user-managed replica locations; empty means automatic"
    )
    keep_versions: int = Field(5, ge=1, le=1000, description="enabled versions kept per secret")


class AzureTarget(Strict):
    """An Azure Key Vault, with RBAC scope fields for per-secret readers."""

    provider: Literal["azure"]
    vault_url: str = Field(pattern=r"^https?://[^/]+/?$")
    subscription_id: str | None = None
    resource_group: str | None = None
    vault_name: str | None = None
    tenant_id: str | None = None
    arm_endpoint: str | None = Field(None, description="Resource Manager endpoint override")
    authority_endpoint: str | None = Field(None, description="token authority override")


TargetConfig = Annotated[
    LocalTarget | AwsTarget | GcpTarget | AzureTarget, Field(discriminator="provider")
]


# --- principals ----------------------------------------------------------------------


class Principal(Strict):
    """One identity, named once, with its id in each cloud."""

    aws: str | None = Field(None, description="IAM role or user ARN")
    gcp: str | None = Field(None, description="IAM member, e.g. serviceAccount:x@p.iam.gserviceaccount.com")
    azure: str | None = Field(None, description="Entra object id")
    local: str | None = Field(None, description="id in the local store; defaults to the principal's name")


# --- values --------------------------------------------------------------------------

CHARSETS = ("alphanumeric", "hex", "base64url", "printable")


class GenerateSpec(Strict):
    """A random value cloudsync generates; regenerated when ``rotation`` is due."""

    length: int = Field(32, ge=8, le=4096)
    charset: Literal["alphanumeric", "hex", "base64url", "printable"] = "alphanumeric"


class FromSpec(Strict):
    """The value of a secret in another target."""

    target: str
    name: SecretName


class ValueSpec(Strict):
    """Where the desired value comes from: exactly one source."""

    generate: GenerateSpec | None = None
    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    sops: str | None = None
    key: str | None = Field(None, description="dotted path inside the sops file")
    from_: FromSpec | None = Field(None, alias="from")
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ValueSpec:
        chosen = [n for n in ("generate", "env", "sops", "from_", "file") if getattr(self, n) is not None]
        if len(chosen) != 1:
            names = ", ".join(n.rstrip("_") for n in chosen) or "none"
            raise ValueError(
                f"a value needs exactly one source of generate, sops, env, from, file (got {names})"
            )
        if self.key is not None and self.sops is None:
            raise ValueError("'key' goes with 'sops'")
        if self.sops is not None and self.key is None:
            raise ValueError("a sops value needs 'key', the dotted path of the value in the file")
        return self

    @property
    def kind(self) -> str:
        for name in ("generate", "env", "sops", "from_", "file"):
            if getattr(self, name) is not None:
                return name.rstrip("_")
        raise AssertionError("validated ValueSpec has a source")


# --- secrets -------------------------------------------------------------------------


class SecretDecl(Strict):
    """One logical secret as declared."""

    name: SecretName
    description: str | None = Field(None, max_length=2048)
    targets: list[str] = Field(min_length=1)
    labels: Labels = Field(default_factory=dict)
    value: ValueSpec | None = Field(None, description="omitted: a metadata-only secret whose value is set elsewhere")
    rotation: Duration | None = None
    expires: Duration | None = None
    readers: list[str] | None = None
    deletion_protection: bool | None = None
    purge_on_delete: bool = Field(
        False, description="delete without a recovery window (AWS force delete, Azure purge)"
    )
    names: dict[str, str] = Field(default_factory=dict, description="per-target remote name override")
    adopt: bool = Field(
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
    labels: Labels = Field(default_factory=dict)
    rotation: Duration | None = None
    expires: Duration | None = None
    readers: list[str] = Field(default_factory=list)
    deletion_protection: bool = False


class PolicyConfig(Strict):
    """Per-stack settings of the policy engine."""

    disabled: list[str] = Field(default_factory=list, description="policy ids turned off for this stack")
    parameters: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per policy id, values for the policy's parameters")
    dirs: list[str] = Field(default_factory=list, description="extra policy folders, relative to the stack")


DriftKindName = Literal["value", "metadata", "access", "missing", "orphan", "unmanaged"]
ALL_DRIFT_KINDS: tuple[DriftKindName, ...] = ("value", "metadata", "access", "missing", "orphan", "unmanaged")


class DriftIgnore(Strict):
    """Known drift to leave out of reports, with a reason and an end date."""

    address: str = Field(description="address glob, e.g. 'aws-prod:legacy/*'")
    kinds: list[DriftKindName] = Field(default_factory=lambda: list(ALL_DRIFT_KINDS))
    reason: str = Field(min_length=3)
    expires: date


class DriftConfig(Strict):
    """``drift:`` settings: the name scope for unmanaged secrets, and ignore entries."""

    scope: list[str] | None = Field(
        default=None, description="logical name prefixes whose unowned secrets are reported as unmanaged; "
                          "default: the first path segment of every declared name")
    ignore: list[DriftIgnore] = Field(default_factory=list)


class IgnoreFile(Strict):
    """``.cloudsyncignore``: the same entries as ``drift.ignore``."""

    ignore: list[DriftIgnore] = Field(default_factory=list)


class StackFile(Strict):
    """``cloudsync.yaml``."""

    version: Literal[1]
    stack: str = Field(pattern=STACK_RE)
    targets: dict[Annotated[str, Field(pattern=TARGET_RE)], TargetConfig] = Field(min_length=1)
    principals: dict[Annotated[str, Field(pattern=PRINCIPAL_RE)], Principal] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    secrets: list[dict[str, Any]] = Field(default_factory=list)


class SecretsFile(Strict):
    """``secrets/*.yaml``."""

    secrets: list[dict[str, Any]] = Field(default_factory=list)


def as_timedelta(duration: str | None) -> timedelta | None:
    return parse_duration(duration) if duration is not None else None


def stack_json_schema() -> dict[str, Any]:
    """JSON Schema of ``cloudsync.yaml`` for editors (secrets items are full declarations)."""
    schema = StackFile.model_json_schema(by_alias=True)
    secret_schema = SecretDecl.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = schema.setdefault("$defs", {})
    defs.update(secret_schema.pop("$defs", {}))
    defs["SecretDecl"] = secret_schema
    schema["properties"]["secrets"]["items"] = {"$ref": "#/$defs/SecretDecl"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema

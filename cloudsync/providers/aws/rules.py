"""AWS's rules for the core: the ``provider: aws`` target model, names, principal ids.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from cloudsync.config.booleans import Flag
from cloudsync.providers.base import is_loopback
from cloudsync.providers.quotas import AwsQuotas
from cloudsync.providers.rules import EndpointRefused, ProviderRules, RemoteNames, TargetModel, id_field


class AwsTarget(TargetModel):
    """An AWS account and region (Secrets Manager)."""

    provider: Literal["aws"]
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="the region, e.g. eu-west-1")
    profile: str | None = Field(None, description="a named profile of the AWS config files (default: the SDK's "
                                "credential chain)")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
                                 description="a role to assume for every call to this target")
    endpoint: str | None = Field(None, description="emulator or VPC endpoint; http only for loopback")
    kms_key_id: str | None = Field(None, description="the KMS key that encrypts new secrets (default: the "
                                   "account's aws/secretsmanager key)")
    recovery_window_days: int = Field(30, ge=7, le=30, description="days a deleted secret stays recoverable (7-30)")
    replica_regions: list[str] = Field(default_factory=list, description="regions new secrets are replicated to")
    access_scan: Flag = Field(
        default=True,
        description="find every principal that can read each secret: identity policies through one paginated "
                    "iam:GetAccountAuthorizationDetails per plan, besides the secrets' resource policies; false "
                    "where cloudsync's identity may not read IAM (readers then show as unknown)")
    iam_endpoint: str | None = Field(
        None, description="IAM endpoint for the access scan; default: the target's endpoint when it is a loopback "
                          "emulator, else AWS's global IAM endpoint")
    access_drift: Literal["all", "changed", "declared"] = Field(
        default="changed",
        description="changed (default): read the resource policy of secrets that declare readers, and of others only "
                    "where AWS shows a change since cloudsync last wrote them (a PutResourcePolicy in CloudTrail's "
                    "event history, or LastChangedDate); a grant added out of band shows in the first plan after "
                    "CloudTrail delivers its event (see docs/providers/aws.md); all: read every owned secret's "
                    "resource policy (about one call per secret); declared: only of secrets that declare readers "
                    "(a grant added to a secret that declares none goes unseen)")
    list_filter: Literal["none", "stack"] = Field(
        default="none",
        description="none: ListSecrets pages through every secret of the region; stack: only through secrets "
                    "tagged with this stack's name (in an account shared by many stacks or tools; a declared "
                    "secret missing from it is confirmed with DescribeSecret; import and drift's unmanaged check "
                    "then see only tagged secrets)")
    quotas: AwsQuotas = Field(default_factory=AwsQuotas,
                              description="the Secrets Manager quotas this target paces to, when they differ")


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` when AWS may be called there: https, or plain http to a loopback emulator."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return endpoint
    if parts.scheme == "http" and host and is_loopback(host):
        return endpoint
    if parts.scheme == "http" and host:
        raise EndpointRefused(
            f"endpoint {endpoint} uses plain http to a non-loopback host",
            "use https:// (VPC endpoints speak TLS); plain http is accepted only for 127.0.0.1, ::1 "
            "or localhost emulators")
    raise EndpointRefused(f"endpoint {endpoint!r} is not an http(s) URL", "write it as https://host[:port]")


class AwsRules(ProviderRules):
    """Secrets Manager takes logical names as they are (``/`` is a valid name character)."""

    kind = "aws"
    tracks_last_access = True
    config_model = AwsTarget
    principal_field = id_field("IAM role or user ARN")
    remote_names = RemoteNames(re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}"), "letters, digits and /_+=.@- (at most 512)")

    def location(self, config: Any) -> str:
        return str(config.endpoint or f"https://secretsmanager.{config.region}.amazonaws.com")

    def endpoints(self, config: Any) -> list[tuple[tuple[str, ...], str]]:
        return [((field,), url) for field in ("endpoint", "iam_endpoint") if (url := getattr(config, field))]

    def check_endpoint(self, field: str, url: str) -> None:
        check_endpoint(url)


RULES = AwsRules()

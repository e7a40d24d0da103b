"""AWS's rules for the core: the ``provider: aws`` target model, names, principal ids.

Imports no SDK (see :mod:`cloudsync.providers.rules`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from cloudsync.providers.rules import ProviderRules, RemoteNames, TargetModel, id_field


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
    access_scan: bool = Field(
        default=True,
        description="find every principal that can read each secret: identity policies through one paginated "
                    "iam:GetAccountAuthorizationDetails per plan, besides the secrets' resource policies; false "
                    "where cloudsync's identity may not read IAM (readers then show as unknown)")
    iam_endpoint: str | None = Field(
        None, description="IAM endpoint for the access scan; default: the target's endpoint when it is a loopback "
                          "emulator, else AWS's global IAM endpoint")
    access_drift: Literal["all", "declared"] = Field(
        default="all",
        description="all: read every owned secret's resource policy, so any extra grant is seen (about one call "
                    "per secret); declared: only of secrets that declare readers (a plan costs about N/100 list "
                    "calls plus one per such secret; a grant added to a secret that declares none goes unseen)")


class AwsRules(ProviderRules):
    """Secrets Manager takes logical names as they are (``/`` is a valid name character)."""

    kind = "aws"
    tracks_last_access = True
    config_model = AwsTarget
    principal_field = id_field("IAM role or user ARN")
    remote_names = RemoteNames(re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}"), "letters, digits and /_+=.@- (at most 512)")


RULES = AwsRules()

"""A target's ``quotas:`` key: the published API quotas it paces to, when its account differs.

Each cloud publishes request quotas per account, project or vault; cloudsync paces every
call to them (see :mod:`cloudsync.ratelimit`). A target overrides them where its quotas
were raised, where other tools share them (a lower ``headroom``), or where an emulator or
gateway enforces its own. Imports no SDK: the stack loader validates these keys.
"""

from __future__ import annotations

from pydantic import Field

from cloudsync.config.fields import Strict

# Bounds: a typo of a few zeros must not turn pacing off, nor pace a plan to a standstill.
MAX_RATE = 100_000.0
MIN_HEADROOM = 0.1


HEADROOM_HELP = "share of each quota cloudsync uses (default 0.95); lower it where other tools share the quota"


class AwsQuotas(Strict):
    """Secrets Manager's request quotas per account and region (requests per second)."""

    writes_per_second: float | None = Field(
        default=None, gt=0, le=MAX_RATE,
        description="replaces the published 50 requests/s of each write family (create, value and metadata, "
                    "resource policy, tags, delete, restore)")
    reads_per_second: float | None = Field(
        default=None, gt=0, le=MAX_RATE,
        description="replaces the published quota of each read family (ListSecrets 100/s, DescribeSecret and "
                    "GetSecretValue 10,000/s)")
    headroom: float | None = Field(default=None, ge=MIN_HEADROOM, le=1.0, description=HEADROOM_HELP)


class AzureQuotas(Strict):
    """A Key Vault's transaction quotas: every secrets operation, read or write, counts against them."""

    transactions_per_10_seconds: float | None = Field(
        default=None, gt=0, le=MAX_RATE * 10,
        description="replaces the published 4,000 secrets transactions (other than creates) per 10 seconds per "
                    "vault and region")
    creates_per_10_seconds: float | None = Field(
        default=None, gt=0, le=MAX_RATE * 10,
        description="replaces the published 300 secret CREATE transactions per 10 seconds per vault and region")
    headroom: float | None = Field(default=None, ge=MIN_HEADROOM, le=1.0, description=HEADROOM_HELP)

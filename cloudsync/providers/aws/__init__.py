"""AWS Secrets Manager provider adapter (boto3 is imported only when an ``aws`` target is used).

:mod:`.rules` (what the core knows about this cloud) imports no SDK, so the adapter class
is loaded only on first use: importing the rules never imports the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudsync.providers.aws.provider import AwsProvider

__all__ = ["AwsProvider"]


def __getattr__(name: str) -> Any:
    if name == "AwsProvider":
        from cloudsync.providers.aws.provider import AwsProvider

        return AwsProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

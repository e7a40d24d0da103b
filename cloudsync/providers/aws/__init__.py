"""AWS Secrets Manager provider adapter (boto3 is imported only when an ``aws`` target is used)."""

from cloudsync.providers.aws.provider import AwsProvider

__all__ = ["AwsProvider"]

"""The AWS provider refuses writes to secrets its stack does not own (see tests/providers/ownership.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.base import ProviderContext
from tests.fakes.moto_server import MotoServer
from tests.providers.aws.conftest import REGION
from tests.providers.ownership import (
    UNOWNED,
    UNOWNED_VALUE,
    assert_foreign_secrets_refused,
    assert_unmanaged_secret_can_be_adopted,
    create_foreign,
)


def test_update_restore_delete_of_unowned_or_other_stack_secrets_are_refused(
        aws: MotoServer, sm: Any, provider: AwsProvider, tmp_path: Path, canary: str) -> None:
    config = AwsTarget(provider="aws", region=REGION, endpoint=aws.url)
    theirs = AwsProvider("aws-prod", config, ProviderContext(stack="billing", root=tmp_path))
    try:
        create_foreign(theirs)
    finally:
        theirs.close()
    sm.create_secret(Name=UNOWNED, SecretString=UNOWNED_VALUE, Tags=[{"Key": "team", "Value": "legacy"}])
    versions = {n: sm.describe_secret(SecretId=n)["VersionIdsToStages"] for n in ("billing-api-key", UNOWNED)}

    def unchanged() -> None:
        assert {n: sm.describe_secret(SecretId=n)["VersionIdsToStages"] for n in versions} == versions

    assert_foreign_secrets_refused(provider, canary, unchanged)
    assert_unmanaged_secret_can_be_adopted(provider)

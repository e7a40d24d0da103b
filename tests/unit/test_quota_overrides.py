"""A target's ``quotas:`` key: validated where it is written, and taken by the adapters' pacing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cloudsync.config.loader import load_stack
from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.providers.aws.actions import QUOTAS, Bucket
from cloudsync.providers.aws.calls import pacer
from cloudsync.providers.azure.pacing import vault_buckets
from cloudsync.providers.quotas import AwsQuotas, AzureQuotas
from cloudsync.ratelimit import DEFAULT_HEADROOM


def stack(targets: str) -> str:
    return f"version: 1\nstack: payments\ntargets:\n{targets}secrets: []\n"


def problems(folder: Path) -> list[Diagnostic]:
    with pytest.raises(CloudsyncError) as info:
        load_stack(folder)
    return info.value.diagnostics


def test_a_valid_override_loads(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(stack(
        "  aws-prod: {provider: aws, region: us-east-1, quotas: {writes_per_second: 100, headroom: 0.8}}\n"
        "  azure-prod: {provider: azure, vault_url: \"https://acme.vault.azure.net\",\n"
        "               quotas: {transactions_per_10_seconds: 8000}}\n"))
    targets = load_stack(folder).config.targets
    assert targets["aws-prod"].quotas == AwsQuotas(writes_per_second=100, headroom=0.8)  # type: ignore[union-attr]
    assert targets["azure-prod"].quotas == AzureQuotas(transactions_per_10_seconds=8000)  # type: ignore[union-attr]


@pytest.mark.parametrize(("quotas", "words"), [
    ("{writes_per_second: 0}", ("writes_per_second", "greater than 0")),
    ("{writes_per_second: 1e9}", ("writes_per_second", "less than or equal")),
    ("{headroom: 1.5}", ("headroom", "less than or equal to 1")),
    ("{headroom: 0.01}", ("headroom", "greater than or equal to 0.1")),
    ("{writes_per_second: fast}", ("writes_per_second", "number")),
])
def test_a_bad_override_is_a_diagnostic_at_its_line(write_stack: Callable[..., Path], quotas: str,
                                                     words: tuple[str, ...]) -> None:
    folder = write_stack(stack("  local: {provider: local}\n"
                               f"  aws-prod: {{provider: aws, region: us-east-1, quotas: {quotas}}}\n"))
    [diag] = problems(folder)
    assert diag.line == 5 and diag.file is not None and diag.file.endswith("cloudsync.yaml")
    assert all(word in diag.message for word in words), diag.message


def test_an_unknown_quota_key_is_refused_at_its_line(write_stack: Callable[..., Path]) -> None:
    folder = write_stack(stack("  azure-prod: {provider: azure, vault_url: \"https://acme.vault.azure.net\",\n"
                               "               quotas: {transactions_per_10_second: 8000}}\n"))
    [diag] = problems(folder)
    assert diag.line == 5 and "transactions_per_10_second" in diag.message
    assert diag.col == 25 and diag.hint is not None


def test_aws_write_families_take_the_override_and_reads_keep_theirs() -> None:
    buckets = pacer(("test-override",), AwsQuotas(writes_per_second=100))
    assert buckets[Bucket.WRITE].rate == pytest.approx(100 * DEFAULT_HEADROOM)
    assert buckets[Bucket.POLICY].rate == pytest.approx(100 * DEFAULT_HEADROOM)
    assert buckets[Bucket.LIST].rate == pytest.approx(QUOTAS[Bucket.LIST] * DEFAULT_HEADROOM)
    default = pacer(("test-default",))
    assert default[Bucket.CREATE].rate == pytest.approx(50 * DEFAULT_HEADROOM)


def test_azure_vault_buckets_follow_the_published_quota_or_the_override() -> None:
    default = vault_buckets("https://a.vault.azure.net", AzureQuotas())
    assert default["transactions"].rate == pytest.approx(400 * DEFAULT_HEADROOM)
    assert default["create"].rate == pytest.approx(30 * DEFAULT_HEADROOM)
    raised = vault_buckets("https://b.vault.azure.net", AzureQuotas(transactions_per_10_seconds=8000, headroom=0.5))
    assert raised["transactions"].rate == pytest.approx(400)

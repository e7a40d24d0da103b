"""Secrets Manager calls paced per quota family: a throttled family pauses, the others go on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudsync.providers.aws import AwsProvider
from cloudsync.providers.aws.actions import QUOTAS, Bucket
from cloudsync.providers.aws.calls import THROTTLE_PAUSE
from cloudsync.providers.base import ProviderError
from cloudsync.ratelimit import buckets
from tests.fakes.clock import FakeClock
from tests.fakes.moto_server import FaultProxy
from tests.providers.aws.conftest import provider_via


@pytest.fixture
def paced(proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsProvider, FakeClock]]:
    """The adapter through the fault proxy, its quota buckets on a fake clock, botocore's own retries off."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    clock = FakeClock()
    for adapter in provider_via(proxy, tmp_path):
        adapter.api.buckets = buckets(QUOTAS, clock=clock, sleep=clock.sleep)
        yield adapter, clock


def test_a_throttled_family_pauses_and_the_others_do_not(paced: tuple[AwsProvider, FakeClock],
                                                         proxy: FaultProxy) -> None:
    adapter, clock = paced
    adapter.api.call("CreateSecret", name="a", Name="a", SecretString="x")
    proxy.fail("TagResource", "ThrottlingException")
    with pytest.raises(ProviderError) as info:
        adapter.api.call("TagResource", name="a", SecretId="a", Tags=[{"Key": "k", "Value": "v"}])
    assert info.value.transient
    adapter.api.call("CreateSecret", name="b", Name="b", SecretString="x")
    assert clock.waits == []  # another family is not held up
    adapter.api.call("TagResource", name="a", SecretId="a", Tags=[{"Key": "k", "Value": "v"}])
    assert clock.waits[0] == pytest.approx(THROTTLE_PAUSE)  # AWS sends no Retry-After: one refill period
    assert proxy.seen.count("TagResource") == 2


def test_a_retry_after_from_aws_is_taken_as_the_pause(paced: tuple[AwsProvider, FakeClock],
                                                      proxy: FaultProxy) -> None:
    adapter, clock = paced
    adapter.api.call("CreateSecret", name="a", Name="a", SecretString="x")
    proxy.fail("PutSecretValue", "ThrottlingException", headers={"Retry-After": "3"})
    with pytest.raises(ProviderError):
        adapter.api.call("PutSecretValue", name="a", SecretId="a", SecretString="y")
    adapter.api.call("UpdateSecret", name="a", SecretId="a", Description="d")  # the same family
    assert clock.waits[0] == pytest.approx(3.0)
    assert Bucket.WRITE in adapter.api.buckets

"""The CloudTrail event-history fake (tests/fakes/cloudtrail.py), driven by the real boto3 client."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fakes.moto_server import MotoServer

ATTRIBUTE = [{"AttributeKey": "EventName", "AttributeValue": "PutResourcePolicy"}]
POLICY = json.dumps({"Version": "2012-10-17", "Statement": []})


@pytest.fixture
def trail(aws: MotoServer) -> Any:
    return boto3.client("cloudtrail", region_name="us-east-1", endpoint_url=aws.url)


def test_secrets_manager_writes_are_journaled_as_sent(aws: MotoServer, sm: Any, trail: Any) -> None:
    arn = sm.create_secret(Name="app/one", SecretString="x")["ARN"]
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=POLICY)
    with pytest.raises(ClientError):
        sm.put_resource_policy(SecretId="app/missing", ResourcePolicy=POLICY)  # refused: not journaled
    (event,) = trail.lookup_events(LookupAttributes=ATTRIBUTE)["Events"]
    record = json.loads(event["CloudTrailEvent"])
    assert event["EventSource"] == "secretsmanager.amazonaws.com" and event["AccessKeyId"] == "testing"
    assert record["requestParameters"]["secretId"] == arn and record["eventName"] == "PutResourcePolicy"
    names = {e["EventName"] for e in trail.lookup_events()["Events"]}
    assert names == {"CreateSecret", "PutResourcePolicy"}


def test_pages_newest_first_within_the_time_range_after_the_lag(aws: MotoServer, trail: Any) -> None:
    now = time.time()
    for i in range(120):  # ten seconds apart, so that no bound falls near an event
        aws.trail.inject("PutResourcePolicy", f"s{i}", at=now - 10_000 + 10 * i)
    aws.trail.inject("DeleteResourcePolicy", "s0", at=now - 10)
    paginator = trail.get_paginator("lookup_events")
    start = datetime.fromtimestamp(now - 10_000 + 195, UTC)
    pages = list(paginator.paginate(LookupAttributes=ATTRIBUTE, StartTime=start))
    assert [len(p["Events"]) for p in pages] == [50, 50]
    resources = [e["Resources"][0]["ResourceName"] for p in pages for e in p["Events"]]
    assert resources == [f"s{i}" for i in range(119, 19, -1)]
    aws.trail.lag = 9_005.0  # events of the last 9,005 s are not delivered yet: s100 onwards
    first = trail.lookup_events(LookupAttributes=ATTRIBUTE, MaxResults=1)["Events"][0]
    assert first["Resources"][0]["ResourceName"] == "s99"
    with pytest.raises(ClientError) as raised:
        trail.lookup_events(LookupAttributes=ATTRIBUTE * 2)
    assert raised.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_a_refusal_is_answered_as_aws_would(aws: MotoServer, trail: Any) -> None:
    aws.trail.refuse = "AccessDeniedException"
    with pytest.raises(ClientError) as raised:
        trail.lookup_events()
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    aws.reset()
    assert trail.lookup_events()["Events"] == []

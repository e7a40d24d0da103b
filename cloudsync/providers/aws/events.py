"""Which owned secrets got a resource policy from someone else: CloudTrail's event history.

Under ``access_drift: changed`` (the default) a plan does not read the resource policy of a
secret that declares no readers, carries cloudsync's sync mark and whose LastChangedDate
says nothing happened since. For those it asks CloudTrail instead, in bulk:
``LookupEvents(EventName=PutResourcePolicy, StartTime=<the oldest mark among them>)``, 50
events a page, 2 calls per second per account and region. Events of other services
(``PutResourcePolicy`` exists in several) are dropped; each Secrets Manager event is mapped
to a secret by its ``requestParameters.secretId`` (a name, a full ARN or a partial ARN) or
its ``Resources``; a secret with an event later than its mark (by more than
:data:`EVENT_SLACK`) is read directly, so a grant is confirmed by its policy, never
inferred from the event. ``DeleteResourcePolicy`` is not watched: it only removes access,
and a secret on which cloudsync left readers is read on every plan anyway.

Limits (docs/providers/aws.md, "Detecting grants without reading every policy"):
CloudTrail delivers events "typically within an average of about 5 minutes", not
guaranteed, so a grant made just before a plan shows in a later one; the history holds
90 days, so for a secret whose mark is older the feed cannot vouch for the time before,
and detection there rests on LastChangedDate.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudsync.providers.aws.actions import QUOTAS, Bucket
from cloudsync.providers.aws.calls import SecretsManagerApi
from cloudsync.providers.base import ProviderError

EVENT_NAME = "PutResourcePolicy"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
PAGE_SIZE = 50
HORIZON = timedelta(days=90)
# cloudsync's own PutResourcePolicy comes before the TagResource that writes the mark, and the
# mark is AWS's clock as read from a Date header (one-second resolution) truncated to seconds:
# an event of cloudsync's own write lands at most about two seconds after its mark.
EVENT_SLACK = 3.0
# Paging is worth it while it is quicker than reading the policies it vouches for directly:
# a page (2/s) costs as much time as this many GetResourcePolicy calls (50/s).
POLICIES_PER_PAGE = QUOTAS[Bucket.POLICY] / QUOTAS[Bucket.EVENTS]
MIN_PAGES = 10  # a small stack may still spend a few seconds on the feed
CLOCK_MARGIN = 60.0
MAX_EVENT_TEXT = 256 * 1024  # CloudTrail's record size limit; anything larger is not parsed
_ARN_SUFFIX = re.compile(r"^(.*)-[A-Za-z0-9]{6}$")  # AWS appends six random characters to a secret's ARN


@dataclass(frozen=True)
class Vouched:
    """An owned secret whose policy the feed must vouch for."""

    name: str
    arn: str | None
    since: float  # epoch seconds (AWS's clock): events up to then are cloudsync's own or were checked


class FeedUnavailable(Exception):
    """The event history could not answer; the plan reads every policy directly instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FeedAnswer:
    changed: frozenset[str]  # names whose policy must be read directly
    pages: int
    start: datetime


def policy_changes(api: SecretsManagerApi, secrets: Iterable[Vouched], now: float) -> FeedAnswer:
    """The secrets among ``secrets`` with a PutResourcePolicy event later than their mark."""
    wanted = list(secrets)
    if not wanted:
        return FeedAnswer(frozenset(), 0, datetime.fromtimestamp(now, UTC))
    # Never after now (CloudTrail refuses a StartTime after EndTime): marks and this clock are
    # both AWS's time as read from Date headers, a second or so apart at worst.
    oldest = min(max(min(s.since for s in wanted), now - HORIZON.total_seconds()), now - CLOCK_MARGIN)
    start = datetime.fromtimestamp(int(oldest), UTC)
    resolve = _resolver(wanted)
    budget = max(MIN_PAGES, math.ceil(len(wanted) / POLICIES_PER_PAGE))
    params: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": EVENT_NAME}],
                              "StartTime": start, "MaxResults": PAGE_SIZE}
    changed: set[str] = set()
    pages = 0
    while True:
        if pages >= budget:
            raise FeedUnavailable(
                f"more than {budget * PAGE_SIZE} PutResourcePolicy events in the region since "
                f"{start:%Y-%m-%d %H:%M} UTC: reading the {len(wanted)} policies directly is quicker")
        try:
            page = api.call("LookupEvents", idempotent=True, **params)
        except ProviderError as exc:
            raise FeedUnavailable(exc.message) from None
        pages += 1
        for event in page.get("Events") or []:
            for secret in _secrets_of(event, resolve):
                if _epoch(event.get("EventTime")) > secret.since + EVENT_SLACK:
                    changed.add(secret.name)
        token = page.get("NextToken")
        if not token:
            return FeedAnswer(frozenset(changed), pages, start)
        params["NextToken"] = token


def _epoch(value: Any) -> float:
    # An event without a readable time is treated as the newest: its secret is read.
    return value.timestamp() if isinstance(value, datetime) else float("inf")


def _resolver(secrets: list[Vouched]) -> Mapping[str, Vouched]:
    found: dict[str, Vouched] = {}
    for secret in secrets:
        found[secret.name] = secret
        if secret.arn:
            found[secret.arn] = secret
    return found


def _secrets_of(event: Mapping[str, Any], known: Mapping[str, Vouched]) -> set[Vouched]:
    """The watched secrets one event is about (none: another service, a failed call, another secret)."""
    if event.get("EventSource") != EVENT_SOURCE:
        return set()
    ids = [str(r.get("ResourceName") or "") for r in event.get("Resources") or []]
    text = event.get("CloudTrailEvent")
    if isinstance(text, str) and len(text) <= MAX_EVENT_TEXT:
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if record.get("eventSource", EVENT_SOURCE) != EVENT_SOURCE or record.get("errorCode"):
                return set()  # a refused call changed nothing
            request = record.get("requestParameters")
            if isinstance(request, dict):
                ids.append(str(request.get("secretId") or ""))
            response = record.get("responseElements")
            if isinstance(response, dict):
                ids += [str(v) for k, v in response.items() if k.lower() in ("arn", "name") and v]
    return {found for ref in ids if ref and (found := _resolve(ref, known)) is not None}


def _resolve(ref: str, known: Mapping[str, Vouched]) -> Vouched | None:
    """A secret id as a caller may write it: name, full ARN, or partial ARN (the name without AWS's suffix)."""
    if ref in known:
        return known[ref]
    if ref.startswith("arn:") and ":secret:" in ref:
        tail = ref.split(":secret:", 1)[1]
        if tail in known:
            return known[tail]
        stripped = _ARN_SUFFIX.match(tail)
        if stripped and stripped.group(1) in known:
            return known[stripped.group(1)]
    return None

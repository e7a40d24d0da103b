"""How a Secrets Manager secret maps to :class:`RemoteSecret`, and back to tags.

- Ownership and the value record are tags (``encode_meta``); user labels are the other
  tags, minus AWS's own ``aws:`` system tags.
- The version cloudsync wrote carries the staging label :data:`STAGE`, moved atomically with
  ``AWSCURRENT`` by ``PutSecretValue``; ``ListSecrets`` returns ``SecretVersionsToStages``, so
  an out-of-band write is visible without reading any value.
- AWS has no native expiry: cloudsync keeps it in the tag :data:`EXPIRES_TAG` (epoch seconds).
- The replica regions cloudsync last set are the tag :data:`REPLICAS_TAG` (``ListSecrets``
  does not return replication status).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cloudsync.providers.base import (
    LOCK_PREFIX,
    ProviderFacts,
    RemoteSecret,
    SecretState,
    ValueRecord,
    decode_meta,
    encode_meta,
)

STAGE = "cloudsync"
CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
EXPIRES_TAG = "cloudsync-expires"
REPLICAS_TAG = "cloudsync-replicas"
SYSTEM_TAG_PREFIX = "aws:"
# With ``access_drift: changed`` (the default): AWS's time (epoch seconds) of cloudsync's last
# write to the secret, written by the last call of each change; a LastChangedDate later than it
# (by more than SYNC_SLACK) means someone else changed the secret since, and its policy is read.
# ``<time>r``: cloudsync left readers on it (always read). ``<time>@<verified>``: a mark an apply
# stamped on a secret whose policy its plan had read without readers at ``<verified>`` (events.py
# checks CloudTrail from then on).
SYNCED_TAG = "cloudsync-synced"
# Covers the Date header's one-second resolution, latency and a retried final TagResource; an
# out-of-band change inside this window after cloudsync's own write goes unseen until the next.
SYNC_SLACK = 10.0
GRANTED_SUFFIX = "r"  # the mark of a secret whose policy cloudsync left granting readers
# The apply lock's marker secret (see lock.py): never part of the state cloudsync plans.
LOCK_TAG = "cloudsync-lock"
# The record's version when cloudsync's tags say it wrote a value but no version carries its
# staging label any more (removed out of band; moto also drops it on an out-of-band put).
LABEL_MISSING = "(staging label missing)"


@dataclass(frozen=True)
class AwsFacts(ProviderFacts):
    """What a write needs of a secret as it was listed."""

    tags: Mapping[str, str]  # every tag, cloudsync's own included
    kms_key_id: str | None
    replicas: tuple[str, ...]  # the replica regions cloudsync last set (REPLICAS_TAG)
    replica_of: str | None  # the primary region when this entry is a replica of another region's secret


def tag_map(entry: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in entry.get("Tags") or []}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def desired_tags(stack: str, state: SecretState, record: ValueRecord | None,
                 replica_regions: list[str]) -> dict[str, str]:
    """Every tag a managed secret should carry (the version lives in the staging label)."""
    tags = {**state.labels, **encode_meta(stack, state, record, include_version=False)}
    if state.expires_at is not None:
        tags[EXPIRES_TAG] = str(int(state.expires_at.timestamp()))
    if replica_regions:
        tags[REPLICAS_TAG] = " ".join(sorted(replica_regions))
    return tags


def _stamp(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value is not None else None)


def versions_to_stages(entry: Mapping[str, Any]) -> dict[str, list[str]]:
    # ListSecrets says SecretVersionsToStages, DescribeSecret says VersionIdsToStages.
    raw = entry.get("SecretVersionsToStages") or entry.get("VersionIdsToStages") or {}
    return {str(k): sorted(str(s) for s in v) for k, v in raw.items()}


def revision(entry: Mapping[str, Any], policy: str | None) -> str:
    """Changes whenever anything cloudsync compares changes (LastAccessedDate is left out)."""
    facts = [_stamp(entry.get("LastChangedDate")), _stamp(entry.get("DeletedDate")), versions_to_stages(entry),
             sorted(tag_map(entry).items()), entry.get("Description"), entry.get("KmsKeyId"), policy]
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _expires(tags: Mapping[str, str]) -> datetime | None:
    raw = tags.get(EXPIRES_TAG, "")
    return datetime.fromtimestamp(int(raw), UTC) if raw.isdigit() else None


def _record(tags: Mapping[str, str], versions: Mapping[str, list[str]], current: str | None,
            record: ValueRecord | None) -> ValueRecord | None:
    if record is None:
        return None
    labelled = sorted(v for v, stages in versions.items() if STAGE in stages)
    if current in labelled:
        version: str | None = current
    elif labelled:
        version = labelled[0]  # not current: an out-of-band version is
    else:
        version = LABEL_MISSING if current is not None else None
    return replace(record, version=version)


def sync_mark(server_time: float, *, granted: bool, verified: float | None = None) -> str:
    """The SYNCED_TAG value: AWS's time of the write, whether the policy left grants readers, and
    (bookkeeping) when the policy was last read and found without readers."""
    suffix = GRANTED_SUFFIX if granted else (f"@{int(verified)}" if verified is not None else "")
    return f"{int(server_time)}{suffix}"


@dataclass(frozen=True)
class SyncMark:
    written: int  # AWS's time of cloudsync's last write (compared with LastChangedDate)
    granted: bool
    verified: int  # since when CloudTrail events on this secret are not cloudsync's own


def parse_mark(entry: Mapping[str, Any]) -> SyncMark | None:
    """The secret's sync mark; None when it has none (or a malformed one: then it is read)."""
    raw = tag_map(entry).get(SYNCED_TAG, "")
    written, _, verified = raw.partition("@")
    granted = written.endswith(GRANTED_SUFFIX)
    written = written.removesuffix(GRANTED_SUFFIX)
    if not written.isdigit() or (verified and (granted or not verified.isdigit())):
        return None
    return SyncMark(int(written), granted, int(verified) if verified else int(written))


def policy_unverified(entry: Mapping[str, Any]) -> bool:
    """Whether a plan must read this owned secret's policy under ``access_drift: changed`` whatever
    CloudTrail says: AWS says it changed after cloudsync last wrote it, cloudsync left readers on it
    (a declaration that drops them must be compared), or there is no mark to tell (True when unknown)."""
    mark = parse_mark(entry)
    changed = entry.get("LastChangedDate")
    if mark is None or mark.granted or not isinstance(changed, datetime):
        return True
    return changed.timestamp() > mark.written + SYNC_SLACK


def is_lock_marker(entry: Mapping[str, Any]) -> bool:
    return str(entry.get("Name", "")).startswith(LOCK_PREFIX) and LOCK_TAG in tag_map(entry)


def replica_of(entry: Mapping[str, Any], region: str) -> str | None:
    """The primary region when this entry is a replica of a secret managed elsewhere."""
    primary = entry.get("PrimaryRegion")
    return str(primary) if primary and primary != region else None


def owner_of(entry: Mapping[str, Any], region: str) -> str | None:
    """The owning stack; a replica is managed from its primary region only, so it has none here."""
    return None if replica_of(entry, region) else decode_meta(tag_map(entry)).owner


def to_remote(entry: Mapping[str, Any], *, region: str, replica_regions: list[str],
              policy: str | None = None, readers: frozenset[str] | None = None,
              other_access: tuple[str, ...] = ()) -> RemoteSecret:
    """A ListSecrets entry (or DescribeSecret response) as a :class:`RemoteSecret`."""
    tags = tag_map(entry)
    meta = decode_meta(tags)
    versions = versions_to_stages(entry)
    current = next((v for v, stages in versions.items() if CURRENT in stages), None)
    primary = replica_of(entry, region)
    recorded = tuple(sorted(tags.get(REPLICAS_TAG, "").split()))
    owner = owner_of(entry, region)
    return RemoteSecret(
        name=str(entry["Name"]),
        labels={k: v for k, v in meta.user_labels.items() if not k.startswith(SYSTEM_TAG_PREFIX)},
        owner=owner,
        managed=meta.managed and not primary,
        description=entry.get("Description") or None,
        expires_at=_expires(tags),
        readers=readers,
        current_version=current,
        # A rotation Lambda sets LastRotatedDate; other writes only move LastChangedDate (which
        # tag edits move too): the best a list entry can say of when the value last changed.
        current_version_at=entry.get("LastRotatedDate") or entry.get("LastChangedDate"),
        record=_record(tags, versions, current, meta.record),
        deleted=entry.get("DeletedDate") is not None,
        protected=meta.protected,
        purge_on_delete=meta.purge_on_delete,
        revision=revision(entry, policy),
        other_access=other_access,
        replication_drift=owner is not None and recorded != tuple(sorted(replica_regions)),
        facts=AwsFacts(tags=tags, kms_key_id=entry.get("KmsKeyId"), replicas=recorded, replica_of=primary),
    )

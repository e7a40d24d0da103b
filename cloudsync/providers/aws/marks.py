"""Sync-mark bookkeeping at the end of an apply: how an estate converges to cheap plans.

Under ``access_drift: changed`` a plan reads directly the resource policy of every owned
secret it cannot vouch for: no sync mark (secrets written before marks existed, or under
another mode), or a LastChangedDate after the mark, or a CloudTrail policy event since it.
Every write leaves a fresh mark, but a secret in sync is never written, so it would be read
on every plan. Before an apply releases its lock, it stamps the mark on those secrets whose
policy its plan read and found with no read-granting statement (and that it did not write
itself): ``<now>@<read time>``, so a grant made after the read is still a CloudTrail event
later than the mark's verified time. At most :data:`MAX_PER_APPLY` a run, paced in the tag
family (50/s): a large estate converges over a few applies, each plan cheaper than the last.
"""

from __future__ import annotations

from collections.abc import Set

from cloudsync.interrupts import in_workers
from cloudsync.providers.aws.calls import SecretsManagerApi
from cloudsync.providers.aws.policy import parse_policy
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.remote import SYNCED_TAG, owner_of, sync_mark, tag_list
from cloudsync.providers.base import is_reserved

MAX_PER_APPLY = 1_000  # ~21 s at 95 % of the tag quota, well inside a lease


def unmarked_in_sync(reader: StateReader, written: Set[str], stack: str, region: str) -> list[str]:
    """Owned secrets the last read had to read directly, found without readers, not written since."""
    found = []
    for name in sorted(reader.read_at):
        entry = reader.last_entries.get(name)
        if entry is None or name in written or name in reader.last_granted or is_reserved(name):
            continue
        if owner_of(entry, region) != stack or entry.get("DeletedDate") is not None:
            continue
        if name not in reader.last_policies or parse_policy(reader.last_policies[name]).readers:
            continue  # unread, or with a grant the plan showed (the apply may not have removed it)
        found.append(name)
    return found


def stamp_marks(api: SecretsManagerApi, reader: StateReader, written: Set[str], stack: str, region: str,
                parallel: int) -> int:
    """Stamp ``<now>@<read time>`` on the secrets :func:`unmarked_in_sync` names; how many were stamped."""
    names = unmarked_in_sync(reader, written, stack, region)[:MAX_PER_APPLY]

    def stamp(name: str) -> None:
        mark = sync_mark(api.server_now(), granted=False, verified=reader.read_at[name])
        api.call("TagResource", name=name, SecretId=name, Tags=tag_list({SYNCED_TAG: mark}))

    in_workers(stamp, names, max(1, parallel))
    return len(names)

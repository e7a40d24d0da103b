"""Read a target's secrets: one ``ListSecrets`` per 25,000 secrets, per-secret calls only
where the bulk listing and the asset index (:mod:`.inventory`) cannot answer.

``ListSecrets`` carries labels (ownership and the value record), annotations
(description), ``expire_time``, replication and the etag. Two things it cannot carry:

- who may read a secret: ``GetIamPolicy``, for secrets owned by the stack and names the
  engine asks about (``query.access``);
- whether a version newer than the one cloudsync wrote exists: ``GetSecretVersion`` of
  ``versions/latest`` (metadata only, never the value), for declared owned secrets that
  carry a value record.

With the asset index (``inventory: true``, the default) both are read only where the
index cannot vouch for the answer (:func:`_direct`): about one call per secret that
declares readers, plus the index's few pages. Unowned, undeclared secrets cost nothing
beyond the listing. No call ever reads a value,
so ``plan --metadata-only`` and a full plan read exactly the same things.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from google.cloud import secretmanager
from google.iam.v1 import iam_policy_pb2, options_pb2

from cloudsync.providers.base import ProviderError, ReadQuery, RemoteSecret, decode_meta, is_reserved, now
from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.inventory import Inventory
from cloudsync.providers.gcp.mapping import GRANTED_LABEL, LOCK_LABEL, Latest, PolicyView, Snapshot, secret_id, snapshot, to_remote

PAGE_SIZE = 25_000  # the service's maximum
T = TypeVar("T")
# What the index says, and how far behind it may be.
Indexed = tuple[Inventory, timedelta]
# Sweeps the index once; None when it cannot be read (then every candidate is read directly).
Index = Callable[[], Indexed | None]
# No binding, as the index reports it: reported as no own readers, never written back.
_NO_BINDINGS = PolicyView(etag=b"", version=1, bindings=(), confirmed=False)


class Gone(Exception):
    """The secret disappeared between the listing and a per-secret call."""


def list_secrets(client: Any, caller: Caller, parent: str) -> list[Any]:
    """Every secret under ``parent`` as raw ``Secret`` protobuf messages."""
    found: list[Any] = []
    token = ""
    while True:
        request = secretmanager.ListSecretsRequest(parent=parent, page_size=PAGE_SIZE, page_token=token)
        # Each page is fetched here (not by the pager) so every page is paced, counted and retried.
        page = caller("ListSecrets", client.list_secrets, request, resource=parent)
        found.extend(secretmanager.Secret.pb(s) for s in page.secrets)
        token = page.next_page_token
        if not token:
            return found


def fetch_policy(client: Any, caller: Caller, name: str) -> PolicyView:
    request = iam_policy_pb2.GetIamPolicyRequest(
        resource=name, options=options_pb2.GetPolicyOptions(requested_policy_version=3))
    try:
        return PolicyView.from_pb(caller("GetIamPolicy", client.get_iam_policy, request, resource=name))
    except ProviderError as exc:
        if exc.code == "NOT_FOUND":
            raise Gone(name) from None
        raise


def fetch_latest(client: Any, caller: Caller, name: str) -> Latest | None:
    """The newest version's number and state; None when the secret has no version."""
    request = secretmanager.GetSecretVersionRequest(name=f"{name}/versions/latest")
    try:
        version = caller("GetSecretVersion", client.get_secret_version, request, resource=name)
    except ProviderError as exc:
        if exc.code == "NOT_FOUND":
            return None  # no versions yet (or the secret just went: the planner rewrites either way)
        raise
    state = secretmanager.SecretVersion.State(version.state)
    created = version.create_time  # a DatetimeWithNanoseconds (UTC) from the proto-plus wrapper
    return Latest(number=int(version.name.rsplit("/", 1)[-1]), enabled=state == secretmanager.SecretVersion.State.ENABLED,
                  state=state.name, created=created if isinstance(created, datetime) and created.year > 1970 else None)


def read_secrets(client: Any, caller: Caller, parent: str, query: ReadQuery, parallel: int,
                 index: Index | None = None) -> list[RemoteSecret]:
    """Every secret under ``parent`` (but apply locks), with readers and latest versions where needed.

    Without ``index`` (or when it cannot be read) every candidate is read directly; with it,
    only what :func:`_direct` picks.
    """
    snaps: list[Snapshot] = []
    wants_policy: list[int] = []
    wants_latest: list[int] = []
    for secret in list_secrets(client, caller, parent):
        if LOCK_LABEL in secret.labels:
            continue  # the apply lock of some stack: not a secret of anyone's
        snap = snapshot(secret)
        name = secret_id(snap.name)
        meta = decode_meta(snap.labels)
        owned = meta.owner == query.stack
        if not is_reserved(name):
            if owned or name in query.access:
                wants_policy.append(len(snaps))
            if owned and name in query.declared and meta.record is not None and meta.record.version:
                wants_latest.append(len(snaps))
        snaps.append(snap)

    found = index() if index is not None and (wants_policy or wants_latest) else None
    if found is not None:
        wants_policy, wants_latest = _direct(snaps, wants_policy, wants_latest, query, found)
    policies = _each(parallel, [snaps[i].name for i in wants_policy], lambda n: fetch_policy(client, caller, n))
    latest = _each(parallel, [snaps[i].name for i in wants_latest], lambda n: fetch_latest(client, caller, n))
    gone: set[int] = set()
    for i, policy in zip(wants_policy, policies, strict=True):
        if isinstance(policy, Gone):
            gone.add(i)
        else:
            snaps[i] = replace(snaps[i], policy=policy)
    for i, newest in zip(wants_latest, latest, strict=True):
        snaps[i] = replace(snaps[i], latest=newest if isinstance(newest, Latest) else None)
    return [to_remote(s) for i, s in enumerate(snaps) if i not in gone]


def _direct(snaps: list[Snapshot], wants_policy: list[int], wants_latest: list[int], query: ReadQuery,
            found: Indexed) -> tuple[list[int], list[int]]:
    """Which candidates still need a direct read; the others get what the index holds (in ``snaps``).

    Read directly: the policy of every secret that declares readers (apply may rewrite it and
    needs its live etag) or where cloudsync granted some (``GRANTED_LABEL``: the index may not
    show its latest grant or revocation yet), of every secret the index shows any binding on
    (a hit, confirmed),
    and both reads of every secret created within the lag window (the index may not know it
    yet). A latest version is read directly unless the index shows exactly the version the
    value record names, enabled: a newer one is an out-of-band write to confirm, an older one
    (or none) means the index has not caught up with a write, cloudsync's own included.
    """
    inventory, lag = found
    moment = inventory.read_time or now()

    def recent(snap: Snapshot) -> bool:
        return snap.created is None or moment - snap.created < lag

    policies: list[int] = []
    for i in wants_policy:
        snap = snaps[i]
        if (secret_id(snap.name) in query.granted or GRANTED_LABEL in snap.labels or snap.name in inventory.policies
                or recent(snap)):
            policies.append(i)
        else:  # the index shows no binding: nothing to confirm
            snaps[i] = replace(snap, policy=_NO_BINDINGS)
    versions: list[int] = []
    for i in wants_latest:
        snap = snaps[i]
        record = decode_meta(snap.labels).record
        newest = inventory.newest.get(snap.name)
        if newest is None or recent(snap) or not newest.enabled or record is None or record.version != str(newest.number):
            versions.append(i)
        else:
            snaps[i] = replace(snap, latest=newest)
    return policies, versions


def _each(parallel: int, names: Sequence[str], call: Callable[[str], T]) -> list[T | Gone]:
    """``call`` for every name, ``parallel`` at a time (the Caller paces them to the quota)."""
    def one(name: str) -> T | Gone:
        try:
            return call(name)
        except Gone as gone:
            return gone

    if len(names) <= 1 or parallel <= 1:
        return [one(n) for n in names]
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="cloudsync-gcp-read") as pool:
        return list(pool.map(one, names))

"""Read a target's actual state in bulk.

One paginated ``ListSecrets`` pass (100 per page, including secrets scheduled for deletion)
answers almost everything. Per-secret calls are made only where it cannot:

- ``DescribeSecret`` confirms what the eventually consistent list suggests would be a create
  (a declared name missing from it) or a delete/restore (an owned secret that is not declared
  or looks deleted), so a plan never acts on a stale listing;
- ``GetResourcePolicy`` gives the readers of the stack's own live secrets and of the declared
  names the engine asks about (``query.access``). ``access_drift`` says which owned secrets:
  ``all`` every one; ``changed`` (the default) those that declare readers, those
  :func:`policy_unverified` names (no sync mark, cloudsync left readers, LastChangedDate moved
  since cloudsync's last write) and those CloudTrail's event history shows a
  ``PutResourcePolicy`` on since their mark (:mod:`.events`; when it cannot be read, every
  one, with a note); ``declared`` only those that declare readers. ``full`` (``--refresh
  full``) reads every one whatever the mode.

With ``list_filter: stack`` the listing asks AWS only for secrets tagged with the stack's
name (tag-key and tag-value filters, both prefix matches: ownership is still checked on
each entry); a declared or asked-about name missing from it is confirmed with DescribeSecret.

No value is ever read here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from cloudsync.interrupts import in_workers
from cloudsync.providers.aws.calls import SecretsManagerApi, is_not_found
from cloudsync.providers.aws.events import FeedUnavailable, Vouched, policy_changes
from cloudsync.providers.aws.policy import parse_policy
from cloudsync.providers.aws.remote import is_lock_marker, owner_of, parse_mark, policy_unverified, to_remote
from cloudsync.providers.base import STACK_LABEL, ProviderError, ReadQuery, RemoteSecret, is_reserved

log = logging.getLogger("cloudsync")

PAGE_SIZE = 100
T = TypeVar("T")
R = TypeVar("R")


class StateReader:
    """Bulk reads of one target."""

    def __init__(self, api: SecretsManagerApi, region: str, replica_regions: list[str], parallel: int,
                 access_drift: str = "changed", list_filter: str = "none", *, events: SecretsManagerApi | None = None,
                 full: bool = False) -> None:
        self.api = api
        self.events = events  # CloudTrail's calls (access_drift: changed)
        self.access_drift = "all" if full else access_drift
        self.list_filter = list_filter
        self.region = region
        self.replica_regions = replica_regions
        self.parallel = parallel
        # What the last read saw, for the access scan that follows it (no second listing).
        self.last_entries: dict[str, dict[str, Any]] = {}
        self.last_policies: dict[str, str | None] = {}
        self.last_granted: frozenset[str] = frozenset()
        self.read_at: dict[str, float] = {}  # AWS's time just before each policy was read
        self.notes: list[str] = []  # how the target was read, for the access scan's notes

    def read(self, query: ReadQuery) -> list[RemoteSecret]:
        self.read_at.clear()
        entries = self.list_all(query.stack if self.list_filter == "stack" else None)
        self._confirm(entries, query)
        policies = self._policies(entries, query)
        self.last_entries, self.last_policies, self.last_granted = entries, policies, query.granted
        secrets = []
        for name, entry in sorted(entries.items()):
            if name in policies:
                text = policies[name]
                parsed = parse_policy(text)
                secrets.append(to_remote(entry, region=self.region, replica_regions=self.replica_regions,
                                         policy=text or "", readers=parsed.readers,
                                         other_access=parsed.other_access))
            else:
                secrets.append(to_remote(entry, region=self.region, replica_regions=self.replica_regions))
        return secrets

    def list_all(self, stack: str | None = None) -> dict[str, dict[str, Any]]:
        """Every secret, or (``stack``) those tagged with that stack's name."""
        entries: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "IncludePlannedDeletion": True}
        if stack is not None:
            params["Filters"] = [{"Key": "tag-key", "Values": [STACK_LABEL]}, {"Key": "tag-value", "Values": [stack]}]
        while True:
            page = self.api.call("ListSecrets", idempotent=True, **params)
            for entry in page.get("SecretList", []):
                if not is_lock_marker(entry):
                    entries[str(entry["Name"])] = entry
            token = page.get("NextToken")
            if not token:
                return entries
            params["NextToken"] = token

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeSecret, or None when the secret does not exist."""
        try:
            return self.api.call("DescribeSecret", name=name, idempotent=True, SecretId=name)
        except ProviderError as exc:
            if is_not_found(exc):
                return None
            raise

    def _confirm(self, entries: dict[str, dict[str, Any]], query: ReadQuery) -> None:
        """Replace what the listing suggests about creates, deletes and restores with DescribeSecret."""
        suspects = {name for name in query.declared if name not in entries}  # would be creates
        if self.list_filter == "stack":  # names asked about that the filtered listing cannot show
            suspects |= {name for name in query.access if name not in entries}
        for name, entry in entries.items():
            if is_reserved(name) or owner_of(entry, self.region) != query.stack:
                continue
            deleted = entry.get("DeletedDate") is not None
            if (name in query.declared) == deleted:  # a restore (declared, deleted) or a delete (neither)
                suspects.add(name)
        for name, found in zip(sorted(suspects), self._each(self.describe, sorted(suspects)), strict=True):
            if found is None or is_lock_marker(found):
                entries.pop(name, None)
            else:
                entries[name] = found

    def _policies(self, entries: Mapping[str, dict[str, Any]], query: ReadQuery) -> dict[str, str | None]:
        """Resource policies of the stack's live secrets and of the names in ``query.access``.

        With ``access_drift: declared``, only of the names whose declaration grants readers:
        the rest are reported with readers unknown, which the planner does not compare. With
        ``changed``, owned secrets that CloudTrail vouches for are reported without readers.
        """
        wanted = []
        vouched: dict[str, Vouched] = {}
        for name, entry in entries.items():
            if is_reserved(name) or entry.get("DeletedDate") is not None:
                continue  # a restore rewrites the policy anyway; AWS refuses some calls on deleted secrets
            owned = owner_of(entry, self.region) == query.stack
            # Vouched for: its readers are compared (declared, none granted), and nothing says they changed.
            if (self.access_drift == "changed" and owned and name in query.access and name not in query.granted
                    and not policy_unverified(entry)):
                mark = parse_mark(entry)
                assert mark is not None  # policy_unverified is True without one
                vouched[name] = Vouched(name, str(entry.get("ARN") or "") or None, float(mark.verified))
            elif self._wants_policy(name, entry, owned, query):
                wanted.append((name, owned))
        flagged = self._flagged(vouched)
        wanted += [(name, True) for name in sorted(flagged)]
        results = self._each(lambda item: self._policy(*item), wanted)
        found = {name: text for (name, _), (known, text) in zip(wanted, results, strict=True) if known}
        # What CloudTrail vouches for: no grant since cloudsync's mark, so none at all (cloudsync
        # left none: a mark with readers is always read).
        return {**{name: None for name in vouched if name not in flagged}, **found}

    def _flagged(self, vouched: Mapping[str, Vouched]) -> frozenset[str]:
        """The vouched-for secrets to read directly: those with a policy event since their mark,
        or every one when the event history cannot answer (a note says why)."""
        if not vouched:
            return frozenset()
        try:
            if self.events is None:
                raise FeedUnavailable("no CloudTrail client")
            answer = policy_changes(self.events, vouched.values(), self.api.server_now())
        except FeedUnavailable as exc:
            note = (f"CloudTrail's event history could not be read ({exc.reason}); the resource policy of every "
                    f"owned secret was read directly instead ({len(vouched)} more calls)")
            log.warning("%s", note)
            self.notes.append(note)
            return frozenset(vouched)
        log.debug("CloudTrail: %d page(s) of PutResourcePolicy events since %s; %d secret(s) to read",
                  answer.pages, answer.start.isoformat(), len(answer.changed))
        return answer.changed

    def _wants_policy(self, name: str, entry: Mapping[str, Any], owned: bool, query: ReadQuery) -> bool:
        if self.access_drift == "declared":
            return name in query.granted
        if self.access_drift == "changed":
            # Another owner's secret the engine asks about (a conflict, an adoption) has no mark of ours.
            return name in query.granted or (policy_unverified(entry) if owned else name in query.access)
        return owned or name in query.access

    def _policy(self, name: str, owned: bool) -> tuple[bool, str | None]:
        """Whether the policy could be read, and its text (None: the secret has no policy)."""
        self.read_at[name] = self.api.server_now()
        try:
            response = self.api.call("GetResourcePolicy", name=name, idempotent=True, SecretId=name)
        except ProviderError as exc:
            if is_not_found(exc):
                return False, None  # deleted since the listing
            if not owned and not exc.transient:
                return False, None  # not ours (denied, a replica, ...): the plan reports the conflict anyway
            raise
        text = response.get("ResourcePolicy")
        return True, (str(text) if text else None)

    def _each(self, func: Callable[[T], R], items: Sequence[T] | Iterable[T]) -> list[R]:
        return in_workers(func, items, self.parallel)

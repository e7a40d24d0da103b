"""Reading a vault's actual state in bulk: the secret list, plus per-secret calls only where needed.

A plan costs one call per 25 secrets (the list), one paginated role-assignment listing for
the whole vault, one listing of deleted secrets only when a declared name is missing, and a
versions listing only for a declared secret whose current version is not cloudsync's (see
:mod:`cloudsync.providers.azure.tags`). No value is ever read here.

A certificate's secret (``managed: true``) belongs to Key Vault, which refuses writes to it:
it is left out unless its name is declared (then the plan shows the conflict), so neither
``import`` nor drift offers it as an unmanaged secret of the stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline import PipelineResponse
from azure.keyvault.secrets import SecretClient, SecretProperties

from cloudsync.providers.azure.errors import azure_call
from cloudsync.providers.azure.rbac import Assignment, Grant, Readers, plain
from cloudsync.providers.azure.tags import CREATED_TAG, created_stamp
from cloudsync.providers.base import VERSION_LABEL, ProviderFacts, ReadQuery, RemoteSecret, decode_meta

PAGE_SIZE = 25  # Key Vault's maximum
# Key Vault names the role assignment that authorised a request in this response header; only a
# vault on the Azure RBAC permission model has one to name (seen on the wire, not in the API reference).
RBAC_ASSIGNMENT_HEADER = "x-ms-keyvault-rbac-assignment-id"
LOOKUP_PARALLELISM = 8
UNKNOWN_VERSION = "unknown"  # a soft-deleted secret's versions cannot be listed


@dataclass(frozen=True)
class Listed:
    """One version's metadata, as the list (current version) or a versions listing shows it."""

    name: str
    tags: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    enabled: bool | None = None
    expires: datetime | None = None
    created: str | None = None
    updated: str | None = None
    recovery_level: str | None = None
    version: str | None = None  # set by versions listings only: the list shows base ids
    deleted: bool = False
    certificate: bool = False  # Key Vault manages it: the secret of a certificate

    @classmethod
    def of(cls, props: SecretProperties, *, deleted: bool = False) -> Listed:
        return cls(name=props.name or "", tags=dict(props.tags or {}), content_type=props.content_type,
                   enabled=props.enabled, expires=props.expires_on, created=created_stamp(props.created_on),
                   updated=created_stamp(props.updated_on), recovery_level=plain(props.recovery_level),
                   version=props.version, deleted=deleted, certificate=bool(props.managed))

    def same_version(self, other: Listed) -> bool:
        return (self.created, self.updated, dict(self.tags)) == (other.created, other.updated, dict(other.tags))


@dataclass(frozen=True)
class AzureFacts(ProviderFacts):
    """What a write needs of a secret as it was read."""

    grants: tuple[Grant, ...] = ()  # cloudsync-model reader assignments at the secret's scope
    recovery_level: str | None = None  # the vault's, e.g. "Recoverable+Purgeable"
    created_tag: str | None = None  # cloudsync-created of the version cloudsync wrote


class StateReader:
    """Builds :class:`RemoteSecret`\\ s for one vault."""

    def __init__(self, secrets: SecretClient, readers: Readers | None) -> None:
        self.secrets = secrets
        self.readers = readers
        # Every role assignment the last read listed (at, above and below the vault), for the
        # access scan of the secrets that read returned: one snapshot, listed once.
        self.assignments: list[Assignment] | None = None
        # Whether the last read's list was authorised by a role assignment: the vault is on the
        # RBAC model, and the access scan need not read the vault resource to learn it.
        self.rbac_seen = False

    def read(self, query: ReadQuery) -> list[RemoteSecret]:
        authorised: list[bool] = []  # per page served: named an assignment

        def note_model(pipeline_response: PipelineResponse[Any, Any]) -> None:
            answer = pipeline_response.http_response
            if answer.status_code < 300:  # not the 401 challenge of a new client, nor a throttled try
                authorised.append(bool(answer.headers.get(RBAC_ASSIGNMENT_HEADER)))

        with azure_call("list_secrets", "in the vault"):
            live = [Listed.of(p) for p in self.secrets.list_properties_of_secrets(max_page_size=PAGE_SIZE,
                                                                                   raw_response_hook=note_model)]
        self.rbac_seen = bool(authorised) and all(authorised)
        declared = {name.casefold(): name for name in query.declared}
        live = [item for item in live if not item.certificate or item.name.casefold() in declared]
        seen = {item.name.casefold() for item in live}
        deleted: list[Listed] = []
        if any(name not in seen for name in declared):
            with azure_call("list_deleted_secrets", "in the vault"):
                deleted = [Listed.of(d.properties, deleted=True)
                           for d in self.secrets.list_deleted_secrets(max_page_size=PAGE_SIZE)
                           if (d.name or "").casefold() in declared and (d.name or "").casefold() not in seen]
        grants = None
        if self.readers is not None:
            self.assignments = self.readers.assignments()
            grants = self.readers.grants_by_secret(self.assignments)
        items = live + deleted
        lookups = self._versions_of([i.name for i in items if _needs_versions(i, i.name.casefold() in declared)])
        # Report a secret under its declared spelling: Azure names are case-insensitive.
        return [_remote(declared.get(i.name.casefold(), i.name), i, lookups.get(i.name), grants) for i in items]

    def _versions_of(self, names: Sequence[str]) -> dict[str, list[Listed]]:
        if not names:
            return {}
        if len(names) == 1:
            return {names[0]: self.versions(names[0])}
        with ThreadPoolExecutor(max_workers=min(LOOKUP_PARALLELISM, len(names))) as pool:
            return dict(zip(names, pool.map(self.versions, names), strict=True))

    def versions(self, name: str) -> list[Listed]:
        """Every version's metadata (no values); empty when the secret does not exist."""
        with azure_call("list_secret_versions", name):
            try:
                return [Listed.of(p) for p in
                        self.secrets.list_properties_of_secret_versions(name, max_page_size=PAGE_SIZE)]
            except ResourceNotFoundError:  # Key Vault lists no versions of an unknown name; be lenient
                return []


def _needs_versions(item: Listed, declared: bool) -> bool:
    """Whether the list cannot tell which version is cloudsync's (see tags.py)."""
    if item.deleted:
        return False  # versions of a soft-deleted secret cannot be listed
    meta = decode_meta(item.tags)
    if not meta.managed:
        return declared  # an untagged current version hides an owned secret only if declared
    return bool(meta.record and meta.record.version and item.tags.get(CREATED_TAG) != item.created)


def cloudsync_version(versions: Iterable[Listed]) -> Listed | None:
    """The newest version carrying cloudsync's tags, preferring one stamped with its own id."""
    tagged = [v for v in versions if decode_meta(v.tags).managed]
    stamped = [v for v in tagged if v.tags.get(VERSION_LABEL) == v.version]
    chosen = stamped or tagged
    return max(chosen, key=lambda v: int(v.created or 0)) if chosen else None


def current_version(versions: Sequence[Listed], listed: Listed) -> Listed | None:
    """The version the list shows as current (same attributes and tags), else the newest."""
    matches = [v for v in versions if v.same_version(listed)]
    if len(matches) == 1:
        return matches[0]
    return max(versions, key=lambda v: int(v.created or 0)) if versions else None


def _remote(name: str, item: Listed, versions: list[Listed] | None,
            grants: Mapping[str, list[Grant]] | None) -> RemoteSecret:
    # Labels, description and record come from the current version when it carries
    # cloudsync's tags (they are what metadata updates change); only an untagged current
    # version (written out of band) falls back to the newest version cloudsync wrote.
    owner_view = item
    current: str | None = None
    if versions is not None:
        owned = cloudsync_version(versions)
        if owned is not None and not decode_meta(item.tags).managed:
            owner_view = owned
        now_current = current_version(versions, item)
        current = now_current.version if now_current else None
    meta = decode_meta(owner_view.tags)
    if versions is None and meta.record is not None and meta.record.version:
        matches = item.tags.get(CREATED_TAG) == item.created
        current = meta.record.version if matches else UNKNOWN_VERSION
    secret_grants = grants.get(name.casefold(), []) if grants is not None else []
    readers = [g for g in secret_grants if g.is_reader]
    facts = AzureFacts(grants=tuple(readers), recovery_level=item.recovery_level,
                       created_tag=owner_view.tags.get(CREATED_TAG))
    return RemoteSecret(
        name=name, labels=meta.user_labels, owner=meta.owner, managed=meta.managed,
        description=owner_view.content_type or None, expires_at=item.expires,
        readers=frozenset(g.principal_id for g in readers) if grants is not None else None,
        current_version=current, current_version_at=_moment(item.created),
        record=meta.record, deleted=item.deleted, protected=meta.protected,
        purge_on_delete=meta.purge_on_delete, revision=_revision(item, current, secret_grants),
        other_access=tuple(sorted(g.describe() for g in secret_grants if not g.is_reader)), facts=facts,
    )


def _moment(stamp: str | None) -> datetime | None:
    """The list's ``created`` of the current version, back from its epoch-seconds form."""
    return datetime.fromtimestamp(int(stamp), UTC) if stamp and stamp.isdigit() else None


def _revision(item: Listed, current: str | None, grants: Sequence[Grant]) -> str:
    """Changes whenever the secret's current version, metadata or assignments change."""
    body = json.dumps([item.name.casefold(), sorted(item.tags.items()), item.content_type, item.enabled,
                       item.expires.isoformat() if item.expires else None, item.created, item.updated,
                       item.deleted, current, sorted((g.assignment_id.lower(), g.role) for g in grants)])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]

"""How cloudsync's model maps onto Secret Manager resources, both ways.

=====================  ====================================================================
cloudsync              Secret Manager
=====================  ====================================================================
user labels            ``Secret.labels``
ownership, value       ``Secret.labels`` too (``managed-by``, ``cloudsync-stack``,
record                 ``cloudsync-fp``/``-kid``/``-spec``/``-written``/``-version``), so one
                       ``ListSecrets`` page carries everything the planner compares
description            ``Secret.annotations["description"]`` (GCP has no description field)
expires_at             ``Secret.expire_time`` (GCP *deletes* the secret at that time)
readers                members of the unconditional ``roles/secretmanager.secretAccessor``
                       binding of the secret's IAM policy (``cloudsync-readers: granted``
                       while cloudsync keeps some there)
other_access           every other binding (other roles, conditional accessor bindings):
                       reported, never changed
current_version        the number of the ``latest`` version (" (disabled)" appended when the
                       newest version is not enabled: readers of ``latest`` then fail)
revision               secret etag | latest version | IAM policy etag
=====================  ====================================================================
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from google.iam.v1 import policy_pb2
from google.type import expr_pb2

from cloudsync.providers.base import ProviderFacts, RemoteSecret, decode_meta, facts_of

ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
DESCRIPTION_KEY = "description"
LOCK_LABEL = "cloudsync-lock"
# Set when cloudsync grants readers (and kept until a write after they are all revoked): the
# plan then reads that secret's policy directly, so a grant or revocation cloudsync made a
# minute ago is never judged from an asset index that has not caught up with it.
GRANTED_LABEL = "cloudsync-readers"
GRANTED = "granted"


def secret_id(resource_name: str) -> str:
    """``projects/1/secrets/x`` -> ``x`` (responses name projects by number, requests by id)."""
    return resource_name.rsplit("/", 1)[-1]


def version_number(resource_name: str) -> int:
    return int(resource_name.rsplit("/", 1)[-1])


def to_datetime(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(timestamp.seconds + timestamp.nanos / 1e9, UTC)


@dataclass(frozen=True)
class Binding:
    role: str
    members: tuple[str, ...]
    condition: tuple[str, str, str] | None = None  # expression, title, description

    def describe(self) -> list[str]:
        suffix = f" (if {self.condition[1] or self.condition[0]})" if self.condition else ""
        return [f"{self.role} {member}{suffix}" for member in self.members]


@dataclass(frozen=True)
class PolicyView:
    """A secret's IAM policy as plain data (kept in the Snapshot, RemoteSecret.facts, for apply)."""

    etag: bytes
    version: int
    bindings: tuple[Binding, ...]
    # False when it comes from Cloud Asset Inventory's index, not from GetIamPolicy: fine to
    # report, never a base for SetIamPolicy (its etag is not the live one).
    confirmed: bool = True

    @classmethod
    def from_pb(cls, policy: Any, *, confirmed: bool = True) -> PolicyView:
        bindings = []
        for b in policy.bindings:
            condition = None
            if b.HasField("condition"):
                condition = (b.condition.expression, b.condition.title, b.condition.description)
            bindings.append(Binding(b.role, tuple(b.members), condition))
        return cls(etag=bytes(policy.etag), version=int(policy.version), bindings=tuple(bindings), confirmed=confirmed)

    @property
    def readers(self) -> frozenset[str]:
        return frozenset(m for b in self.bindings if b.role == ACCESSOR_ROLE and b.condition is None
                         for m in b.members)

    @property
    def other_access(self) -> tuple[str, ...]:
        return tuple(sorted(line for b in self.bindings if b.role != ACCESSOR_ROLE or b.condition is not None
                            for line in b.describe()))

    def with_readers(self, readers: Iterable[str]) -> PolicyView:
        """The same policy with the unconditional accessor binding set to ``readers``, all else kept."""
        kept = tuple(b for b in self.bindings if b.role != ACCESSOR_ROLE or b.condition is not None)
        members = tuple(sorted(set(readers)))
        bindings = (*kept, Binding(ACCESSOR_ROLE, members)) if members else kept
        return replace(self, bindings=bindings)

    def to_pb(self) -> Any:
        conditional = any(b.condition for b in self.bindings)
        policy = policy_pb2.Policy(version=3 if conditional else max(1, min(self.version, 3)), etag=self.etag)
        for b in self.bindings:
            binding = policy.bindings.add(role=b.role, members=list(b.members))
            if b.condition:
                binding.condition.CopyFrom(expr_pb2.Expr(expression=b.condition[0], title=b.condition[1],
                                                         description=b.condition[2]))
        return policy


@dataclass(frozen=True)
class Latest:
    """The newest version of a secret (what ``versions/latest`` resolves to)."""

    number: int
    enabled: bool
    state: str
    created: datetime | None = None

    @property
    def current(self) -> str:
        return str(self.number) if self.enabled else f"{self.number} ({self.state.lower()})"


@dataclass(frozen=True)
class Snapshot(ProviderFacts):
    """What apply needs of a secret as it was read: etag and the fields it may rewrite."""

    name: str  # full resource name as the service returned it
    etag: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    expire_time: datetime | None
    replication: str
    policy: PolicyView | None = None
    latest: Latest | None = None
    created: datetime | None = None  # the secret's create_time (fresh from ListSecrets)


def snapshot(secret: Any) -> Snapshot:
    """``secret`` is a raw ``Secret`` protobuf message."""
    kind = secret.replication.WhichOneof("replication") if secret.HasField("replication") else None
    if kind == "user_managed":
        replication = "user-managed: " + ",".join(r.location for r in secret.replication.user_managed.replicas)
    else:
        replication = kind or "regional"
    return Snapshot(
        name=secret.name, etag=secret.etag, labels=dict(secret.labels), annotations=dict(secret.annotations),
        expire_time=to_datetime(secret.expire_time) if secret.HasField("expire_time") else None,
        replication=replication, created=to_datetime(secret.create_time) if secret.HasField("create_time") else None)


def to_remote(snap: Snapshot) -> RemoteSecret:
    meta = decode_meta(snap.labels)
    policy = snap.policy
    revision = "|".join((snap.etag, snap.latest.current if snap.latest else "-",
                         base64.b64encode(policy.etag).decode() if policy else "-"))
    return RemoteSecret(
        name=secret_id(snap.name), labels=meta.user_labels, owner=meta.owner, managed=meta.managed,
        description=snap.annotations.get(DESCRIPTION_KEY) or None, expires_at=snap.expire_time,
        readers=policy.readers if policy else None,
        current_version=snap.latest.current if snap.latest else None,
        current_version_at=snap.latest.created if snap.latest else None,
        record=meta.record, deleted=False, protected=meta.protected, purge_on_delete=meta.purge_on_delete,
        revision=revision, other_access=policy.other_access if policy else (),
        facts=snap,
    )


def snapshot_of(remote: RemoteSecret | None) -> Snapshot | None:
    return facts_of(remote, Snapshot)

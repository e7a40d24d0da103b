"""The provider interface: read a target's actual state in bulk, apply one change.

An adapter is small on purpose: :meth:`Provider.read` lists everything the engine needs
about a target in as few calls as the cloud allows; :meth:`Provider.apply` performs one
planned change; :meth:`Provider.read_value` fetches one plaintext value when a plan truly
needs it; :meth:`Provider.permissions` declares the cloud permissions each operation
needs. The engine never knows which cloud it talks to.

Ownership and what cloudsync remembers about a value live in the secret's own metadata
(labels or tags), encoded by :func:`encode_meta` and read back by :func:`decode_meta`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets as _random
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from cloudsync.values.secret import SecretValue

if TYPE_CHECKING:
    from cloudsync.providers.lease import Lease, LeaseTerms, TargetLock

OWNER_LABEL = "managed-by"
OWNER_VALUE = "cloudsync"
STACK_LABEL = "cloudsync-stack"
FINGERPRINT_LABEL = "cloudsync-fp"
KEY_ID_LABEL = "cloudsync-kid"
SPEC_LABEL = "cloudsync-spec"
WRITTEN_LABEL = "cloudsync-written"
VERSION_LABEL = "cloudsync-version"
PROTECT_LABEL = "cloudsync-protect"
PURGE_LABEL = "cloudsync-purge"
ROLE_LABEL = "cloudsync-role"
META_PREFIXES = (OWNER_LABEL, "cloudsync-")

# The per-stack fingerprint key secret that each target keeps for itself (a name valid in
# every cloud). The planner never plans anything for it.
FINGERPRINT_KEY_PREFIX = "cloudsync-fingerprint-key-"
# The per-stack apply lock a cloud target may keep as a secret of its own.
LOCK_PREFIX = "cloudsync-lock-"


KEY_READ_ATTEMPTS = 5


def fingerprint_key_name(stack: str) -> str:
    return FINGERPRINT_KEY_PREFIX + stack


def is_reserved(name: str) -> bool:
    """cloudsync's own secrets in a target (fingerprint key, apply lock): never planned or imported."""
    return name.startswith((FINGERPRINT_KEY_PREFIX, LOCK_PREFIX))


class Operation(StrEnum):
    """Operations whose cloud permissions a provider declares."""

    PLAN_METADATA = "plan-metadata"  # plan --metadata-only, drift
    PLAN = "plan"  # plan with values (fingerprint key, `from` sources)
    APPLY = "apply"


@dataclass(frozen=True)
class ValueRecord:
    """What cloudsync remembers about the value it last wrote (never the value)."""

    version: str | None = None  # remote version id cloudsync wrote
    fingerprint: str | None = None  # keyed HMAC, see cloudsync.values.fingerprint
    key_id: str | None = None
    spec: str | None = None  # digest of a generate spec
    written_at: datetime | None = None


@dataclass(frozen=True)
class RemoteSecret:
    """One secret as it stands in a target (metadata only)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)  # user labels only
    owner: str | None = None  # owning stack when managed-by=cloudsync, else None
    managed: bool = False  # carries managed-by=cloudsync (of any stack)
    description: str | None = None
    expires_at: datetime | None = None
    readers: frozenset[str] | None = None  # principal ids granted read; None = not read
    current_version: str | None = None
    current_version_at: datetime | None = None  # when the current version was created, where the cloud says
    record: ValueRecord | None = None
    deleted: bool = False  # soft-deleted / scheduled for deletion, recoverable
    protected: bool = False
    purge_on_delete: bool = False
    revision: str = ""  # changes whenever anything about the secret changes (staleness)
    other_access: tuple[str, ...] = ()  # grants outside cloudsync's model: reported, never wiped
    extra: Mapping[str, Any] = field(default_factory=dict)  # provider-specific facts for its own apply

    @property
    def value_drifted(self) -> bool:
        """A version other than the one cloudsync wrote is current (an out-of-band write)."""
        return (
            self.record is not None
            and self.record.version is not None
            and self.current_version is not None
            and self.record.version != self.current_version
        )


@dataclass(frozen=True)
class SecretState:
    """The desired state of one remote secret, in the target's own terms."""

    name: str
    labels: Mapping[str, str]
    description: str | None
    expires_at: datetime | None
    readers: frozenset[str] | None  # provider principal ids; None = access not managed
    protected: bool = False
    purge_on_delete: bool = False


@dataclass(frozen=True)
class WriteRequest:
    """One change for a provider to perform.

    Semantics every adapter follows:

    - ``create``: make the secret with ``state`` and, when ``value`` is set, its first
      version. A secret that already exists *owned by this stack* (a retried create) is
      updated instead; anything else existing under the name is an error.
    - ``update``: touch only what ``reasons`` names (``value`` -> new version; ``labels``,
      ``description``, ``expiry``, ``ownership`` -> metadata; ``access`` -> readers).
    - ``restore``: bring a soft-deleted / scheduled-for-deletion secret back, then update
      it as above.
    - ``delete``: soft delete (recoverable), or purge / force delete when
      ``before.purge_on_delete``. Deleting what is already gone succeeds.
    - Metadata: always write ``state.labels`` plus ``encode_meta(stack, state, record)``
      where ``record`` is ``request.record`` — when ``value`` is set, with ``version`` set
      to the version id just written (and stored so that the next ``read`` reports it in
      ``RemoteSecret.record.version``); otherwise the record is the one read before and
      must be kept as it is.
    - ``state.readers`` None means access is not managed: leave grants alone.
    - Every failure is a :class:`ProviderError` (never an SDK exception, never a value in
      the message); throttling, 5xx and connection errors are ``transient=True`` with
      ``retry_after`` when the cloud says.
    """

    action: str  # create | update | delete | restore
    reasons: frozenset[str]
    stack: str
    name: str
    state: SecretState | None  # None for delete
    value: SecretValue | None  # set only when a value is written
    record: ValueRecord | None  # stored along the value; the provider fills in the version
    before: RemoteSecret | None
    token: str  # deterministic idempotency token for this change of this plan


@dataclass(frozen=True)
class ReadQuery:
    """What the engine wants from one bulk read."""

    stack: str
    declared: frozenset[str]  # remote names declared for this target
    access: frozenset[str]  # remote names whose readers are needed (besides owned secrets)
    metadata_only: bool = False
    granted: frozenset[str] = frozenset()  # declared names whose declaration grants at least one reader


@dataclass(frozen=True)
class RateLimits:
    """Requests per second a target accepts (the published quotas, with headroom)."""

    reads_per_second: float = 50.0
    writes_per_second: float = 20.0
    max_parallel: int = 8


class ProviderError(Exception):
    """A provider call failed. ``transient`` errors are retried by the apply engine."""

    def __init__(self, message: str, *, code: str | None = None, transient: bool = False,
                 retry_after: float | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.transient = transient
        self.retry_after = retry_after
        self.hint = hint


class LockedError(ProviderError):
    """Another apply holds the target's lock."""


class NotFoundError(ProviderError):
    """The secret (or version) does not exist. Adapters raise it from ``read_value``."""


@dataclass
class ProviderContext:
    """What a provider knows about the run: the stack, its folder."""

    stack: str
    root: Path


class Provider(ABC):
    """One target of one cloud."""

    kind: ClassVar[str]
    limits: ClassVar[RateLimits] = RateLimits()

    def __init__(self, target: str, config: Any, context: ProviderContext) -> None:
        self.target = target
        self.config = config
        self.context = context
        self.api_calls: Counter[str] = Counter()  # operation name -> calls, for benchmarks

    @abstractmethod
    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        """Every secret in the target, in bulk; readers filled for owned and ``query.access``."""

    @abstractmethod
    def apply(self, request: WriteRequest) -> ValueRecord | None:
        """Perform one change; return the record of the value written, if one was."""

    @abstractmethod
    def read_value(self, name: str) -> SecretValue:
        """The current plaintext value of one secret (raise ProviderError if absent)."""

    @classmethod
    @abstractmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        """The cloud permissions each operation needs, least privilege."""

    def lock(self, holder: str, terms: LeaseTerms | None = None) -> contextlib.AbstractContextManager[Lease]:
        """Exclusive write access to the target for one apply, as a renewed lease (see
        :mod:`cloudsync.providers.lease`); raise LockedError if another apply holds it."""
        from cloudsync.providers.lease import Lease, LeaseTerms, hold

        lock = self.target_lock()
        if lock is None:
            return contextlib.nullcontext(Lease(self.target))
        return hold(lock, holder, terms or LeaseTerms())

    def target_lock(self) -> TargetLock | None:
        """This target's apply lock (None: the target needs none)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- the per-target fingerprint key, kept as a managed secret inside the target --

    def fingerprint_key(self, *, create: bool) -> bytes | None:
        """This target's fingerprint key; create it when absent and ``create``."""
        name = fingerprint_key_name(self.context.stack)
        for attempt in range(KEY_READ_ATTEMPTS):
            try:
                return self.read_value(name).reveal()
            except NotFoundError:
                break
            except ProviderError as exc:
                # Only absence means "no key yet": after a passing outage, writing a new key
                # would make every stored fingerprint stale and rewrite every value.
                if not exc.transient or attempt == KEY_READ_ATTEMPTS - 1:
                    raise
                time.sleep(min(10.0, exc.retry_after if exc.retry_after is not None else 0.2 * 2**attempt))
        if not create:
            return None
        value = SecretValue(_random.token_hex(32))
        self.apply(WriteRequest(
            action="create", reasons=frozenset({"value"}), stack=self.context.stack, name=name,
            state=SecretState(name=name, labels={}, expires_at=None, readers=None,
                              description="cloudsync fingerprint key (HMAC key for value fingerprints)"),
            value=value, record=ValueRecord(written_at=now()), before=None,
            token=f"fpkey-{self.context.stack}"))
        return value.reveal()


def is_loopback(host: str) -> bool:
    """A loopback host (127.0.0.0/8, ::1, localhost): the only place plain-text transports are allowed."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- metadata encoding shared by every provider ------------------------------------


def encode_meta(stack: str, state: SecretState | None, record: ValueRecord | None,
                *, include_version: bool = True) -> dict[str, str]:
    """Ownership and value-record labels; values fit every cloud's label rules."""
    meta = {OWNER_LABEL: OWNER_VALUE, STACK_LABEL: stack}
    if state is not None:
        if state.protected:
            meta[PROTECT_LABEL] = "true"
        if state.purge_on_delete:
            meta[PURGE_LABEL] = "true"
    if record is not None:
        if record.fingerprint:
            meta[FINGERPRINT_LABEL] = record.fingerprint
        if record.key_id:
            meta[KEY_ID_LABEL] = record.key_id
        if record.spec:
            meta[SPEC_LABEL] = record.spec
        if record.written_at:
            meta[WRITTEN_LABEL] = str(int(record.written_at.timestamp()))
        if include_version and record.version:
            meta[VERSION_LABEL] = record.version
    return meta


@dataclass(frozen=True)
class DecodedMeta:
    user_labels: dict[str, str]
    managed: bool
    owner: str | None
    record: ValueRecord | None
    protected: bool
    purge_on_delete: bool


def decode_meta(labels: Mapping[str, str]) -> DecodedMeta:
    """Split a secret's labels into user labels and cloudsync's metadata."""
    user = {k: v for k, v in labels.items() if not k.startswith(META_PREFIXES)}
    managed = labels.get(OWNER_LABEL) == OWNER_VALUE
    owner = labels.get(STACK_LABEL) if managed else None
    record = None
    if managed and any(k in labels for k in (FINGERPRINT_LABEL, SPEC_LABEL, WRITTEN_LABEL, VERSION_LABEL)):
        written = labels.get(WRITTEN_LABEL)
        record = ValueRecord(
            version=labels.get(VERSION_LABEL),
            fingerprint=labels.get(FINGERPRINT_LABEL),
            key_id=labels.get(KEY_ID_LABEL),
            spec=labels.get(SPEC_LABEL),
            written_at=datetime.fromtimestamp(int(written), UTC) if written and written.isdigit() else None,
        )
    return DecodedMeta(
        user_labels=user, managed=managed, owner=owner, record=record,
        protected=labels.get(PROTECT_LABEL) == "true",
        purge_on_delete=labels.get(PURGE_LABEL) == "true",
    )

"""The provider interface: read a target's actual state in bulk, apply one change.

An adapter is small on purpose: :meth:`Provider.read` lists everything the engine needs
about a target in as few calls as the cloud allows; :meth:`Provider.apply` performs one
planned change; :meth:`Provider.read_value` fetches one plaintext value when a plan truly
needs it, and :meth:`Provider.read_values` several at once (in bulk where the cloud can);
:meth:`Provider.permissions` declares the cloud permissions each operation
needs. The engine never knows which cloud it talks to.

A change crosses the boundary as one of five typed requests (:data:`WriteRequest`):
create, update and restore carry the desired state, delete does not, retire names one old
version to disable. :meth:`Provider.apply`
is written once, here: it refuses to touch a secret this stack does not own (unless the
change adopts an unmanaged one) and hands the request to the adapter's :class:`Writes`,
whose methods (``create``, ``update``, ``restore``, ``delete``, ``retire``) only it calls.

Ownership and what cloudsync remembers about a value live in the secret's own metadata
(labels or tags), encoded by :func:`encode_meta` and read back by :func:`decode_meta`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import re
import secrets as _random
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, assert_never

from cloudsync.plan.actions import Action, Reason
from cloudsync.providers.access import AccessScan, EffectiveReader, Via
from cloudsync.providers.errors import ErrorKind as ErrorKind
from cloudsync.providers.errors import ProviderError as ProviderError
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
# The version a new value superseded, retired once its grace period ends:
# ``<version>_<written epoch>_<due epoch>`` (fits GCP's 63-character label values).
RETIRE_LABEL = "cloudsync-retire"
META_PREFIXES = (OWNER_LABEL, "cloudsync-")

# The per-stack fingerprint key secret that each target keeps for itself (a name valid in
# every cloud). The planner never plans anything for it.
FINGERPRINT_KEY_PREFIX = "cloudsync-fingerprint-key-"
# The per-stack apply lock a cloud target may keep as a secret of its own.
LOCK_PREFIX = "cloudsync-lock-"


KEY_ATTEMPTS = 5
T = TypeVar("T")


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


_VERSION_ID = re.compile(r"[0-9A-Za-z-]{1,40}")


def is_version_id(version: str | None) -> bool:
    """A real remote version id (not a marker such as AWS's "(staging label missing)")."""
    return version is not None and _VERSION_ID.fullmatch(version) is not None


@dataclass(frozen=True)
class Retirement:
    """A version cloudsync wrote and then superseded: disabled once ``due`` has passed."""

    version: str
    due: datetime
    written_at: datetime | None = None  # when cloudsync wrote that version, when known

    def encode(self) -> str:
        written = str(int(self.written_at.timestamp())) if self.written_at else ""
        return f"{self.version}_{written}_{int(self.due.timestamp())}"

    @classmethod
    def decode(cls, text: str) -> Retirement | None:
        """The retirement a label holds; None for anything malformed (a hand-edited label)."""
        parts = text.split("_")
        if len(parts) != 3 or not is_version_id(parts[0]) or not parts[2].isdigit() or len(parts[2]) > 12:
            return None
        written = parts[1]
        if written and (not written.isdigit() or len(written) > 12):
            return None
        return cls(version=parts[0], due=datetime.fromtimestamp(int(parts[2]), UTC),
                   written_at=datetime.fromtimestamp(int(written), UTC) if written else None)


@dataclass(frozen=True)
class VersionInfo:
    """One version of a secret, as an audit lists it (metadata only)."""

    version: str
    created_at: datetime | None
    enabled: bool
    by_cloudsync: bool | None = None  # the version says who wrote it (Azure tags); None: it cannot say


@dataclass(frozen=True)
class ValueRecord:
    """What cloudsync remembers about the value it last wrote (never the value)."""

    version: str | None = None  # remote version id cloudsync wrote
    fingerprint: str | None = None  # keyed HMAC, see cloudsync.values.fingerprint
    key_id: str | None = None
    spec: str | None = None  # digest of a generate spec
    written_at: datetime | None = None
    retire: Retirement | None = None  # the previous version cloudsync wrote, still to be disabled


@dataclass(frozen=True)
class ProviderFacts:
    """What an adapter learned about a secret while reading it and needs again to write it
    (tags as read, etags, role assignments, ...).

    Each adapter subclasses it with typed fields and finds its own with :func:`facts_of`;
    the planner and the engine carry it without looking inside.
    """


FactsT = TypeVar("FactsT", bound=ProviderFacts)


def facts_of(secret: RemoteSecret | None, kind: type[FactsT]) -> FactsT | None:
    """``secret``'s facts when an adapter of ``kind`` read it, else None."""
    facts = secret.facts if secret is not None else None
    return facts if isinstance(facts, kind) else None


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
    replication_drift: bool = False  # its replicas differ from the ones the target declares
    facts: ProviderFacts | None = None  # what the adapter that read it needs again to write it
    versions: tuple[VersionInfo, ...] | None = None  # every version, newest first; None: not listed (plans never do)

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


@dataclass(frozen=True, kw_only=True)
class Request:
    """What every write request carries.

    Semantics every adapter follows (the base class has checked ownership already):

    - create: make the secret with ``state`` and, when ``value`` is set, its first
      version. A secret that already exists *owned by this stack* (a retried create) is
      updated instead; anything else existing under the name is a :class:`NotOwnedError`.
    - update: touch only what ``reasons`` names (``VALUE`` -> new version; ``LABELS``,
      ``DESCRIPTION``, ``EXPIRY``, ``OWNERSHIP`` -> metadata; ``ACCESS`` -> readers).
    - restore: bring a soft-deleted / scheduled-for-deletion secret back, then update
      it as above.
    - delete: soft delete (recoverable), or purge / force delete when
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

    action: ClassVar[Action]
    stack: str
    name: str  # the remote name
    reasons: frozenset[Reason] = frozenset()
    before: RemoteSecret | None = None  # the secret as this run read it; None when it did not exist
    token: str  # deterministic idempotency token for this change of this plan


@dataclass(frozen=True, kw_only=True)
class StateRequest(Request):
    """A write that leaves the secret in a desired state: create, update or restore."""

    state: SecretState
    value: SecretValue | None = None  # set only when a value is written
    record: ValueRecord | None = None  # stored along the value; the provider fills in the version

    @property
    def adopting(self) -> bool:
        """The planner takes over a secret no cloudsync stack manages (``cloudsync import --adopt``)."""
        return (self.action is not Action.CREATE and Reason.OWNERSHIP in self.reasons
                and self.before is not None and not self.before.managed)


@dataclass(frozen=True, kw_only=True)
class CreateRequest(StateRequest):
    action: ClassVar[Action] = Action.CREATE


@dataclass(frozen=True, kw_only=True)
class UpdateRequest(StateRequest):
    action: ClassVar[Action] = Action.UPDATE


@dataclass(frozen=True, kw_only=True)
class RestoreRequest(StateRequest):
    action: ClassVar[Action] = Action.RESTORE


@dataclass(frozen=True, kw_only=True)
class DeleteRequest(Request):
    action: ClassVar[Action] = Action.DELETE


@dataclass(frozen=True, kw_only=True)
class RetireRequest(Request):
    """Disable one old version that cloudsync wrote and a later value superseded.

    The adapter re-reads the secret first (this runs after the change's own write, if any)
    and does nothing to a version that is current, that it cannot prove cloudsync wrote, or
    that is already retired; then it removes ``cloudsync-retire`` from the metadata when the
    marker still names this version (a newer write may have put another one there).
    """

    action: ClassVar[Action] = Action.UPDATE
    retirement: Retirement


WriteRequest = CreateRequest | UpdateRequest | RestoreRequest | DeleteRequest | RetireRequest


def may_retire(request: RetireRequest, current: str | None, fresh: ValueRecord | None) -> bool:
    """Whether cloudsync's own records name the version as one it wrote, and it is not current.

    ``current`` and ``fresh`` (the value record) are as the adapter just read them; the
    records this run read before (``request.before``) count too, since the change's own write
    may have replaced the marker already.
    """
    version = request.retirement.version
    if not is_version_id(version) or version == current:
        return False
    known: set[str | None] = set()
    for record in (request.before.record if request.before is not None else None, fresh):
        if record is not None:
            known |= {record.version, record.retire.version if record.retire else None}
    return version in known


def retire_refused(request: RetireRequest) -> ProviderError:
    """The refusal to disable a version that is current or that cloudsync has no record of writing."""
    return ProviderError(
        f"{request.name}: version {request.retirement.version} is current, or not a version cloudsync recorded "
        "writing; it was not disabled", code="RetireRefused",
        hint="cloudsync only retires versions it wrote and then superseded; plan again")


def without_marker(record: ValueRecord | None, version: str) -> ValueRecord | None:
    """``record`` with its retirement marker removed when it names ``version``; None when nothing changes."""
    if record is None or record.retire is None or record.retire.version != version:
        return None
    return dataclasses.replace(record, retire=None)


def write_request(action: Action, *, stack: str, name: str, reasons: frozenset[Reason], state: SecretState | None,
                  value: SecretValue | None, record: ValueRecord | None, before: RemoteSecret | None,
                  token: str) -> WriteRequest:
    """The request for one planned change; ProviderError when the change cannot be one."""
    if action is Action.DELETE:
        return DeleteRequest(stack=stack, name=name, reasons=reasons, before=before, token=token)
    kinds: dict[Action, type[CreateRequest | UpdateRequest | RestoreRequest]] = {
        Action.CREATE: CreateRequest, Action.UPDATE: UpdateRequest, Action.RESTORE: RestoreRequest}
    if action not in kinds or state is None:
        what = "nothing to do" if action is Action.NOOP else "no desired state"
        raise ProviderError(f"{action} of {name}: {what}", code="InvalidRequest",
                            hint="the plan is malformed; plan again")
    return kinds[action](stack=stack, name=name, reasons=reasons, before=before, token=token, state=state,
                         value=value, record=record)


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
    """How many changes apply runs at once on a target, and (rarely) how many it starts per second.

    Pacing is the adapter's business: it takes a token per API call from the bucket of the
    call's operation family, at the cloud's published quota (see :mod:`cloudsync.ratelimit`),
    so a change costing three calls is paced as three. ``writes_per_second`` caps changes per
    second only for an adapter that does not pace its own calls; None: no engine-side cap.
    """

    writes_per_second: float | None = None
    max_parallel: int = 8


class LockedError(ProviderError):
    """Another apply holds the target's lock."""

    default_kind = ErrorKind.CONFLICT


class NotFoundError(ProviderError):
    """The secret (or version) does not exist. Adapters raise it from ``read_value``."""

    default_kind = ErrorKind.NOT_FOUND


class NotOwnedError(ProviderError):
    """The secret belongs to another stack, or to no stack: cloudsync does not change it."""

    default_kind = ErrorKind.CONFLICT


def not_owned(request: Request, owner: str | None, *, managed: bool) -> NotOwnedError:
    """The refusal to write ``request`` to a secret owned by ``owner`` (None: by no stack)."""
    if not managed:
        who = "not managed by cloudsync"
    elif owner:
        who = f"owned by stack {owner!r}"
    else:
        who = "managed by cloudsync but names no stack"
    exists = " already exists and" if request.action is Action.CREATE else ""
    return NotOwnedError(
        f"{request.name}{exists} is {who}; stack {request.stack} does not {request.action.value} it, "
        "nothing was changed", code="NotOwned",
        hint="adopt it with `cloudsync import --adopt`, or rename the declaration" if not managed else
        "a stack never takes another stack's secret; rename the declaration")


def check_ownership(request: WriteRequest) -> None:
    """Refuse a change to a secret this stack does not own, unless it adopts an unmanaged one.

    ``before`` is the secret as this run read it (for a saved plan: as apply read it again),
    so an edited plan cannot point a change at someone else's secret.
    """
    before = request.before
    if before is None:
        if isinstance(request, UpdateRequest | RestoreRequest | RetireRequest):
            raise NotFoundError(f"{request.name} did not exist when this run read the target; nothing was changed",
                                code="NotFound", hint="plan again")
        return
    if before.owner == request.stack:
        return
    if isinstance(request, UpdateRequest | RestoreRequest) and request.adopting:
        return
    raise not_owned(request, before.owner, managed=before.managed)


@dataclass
class ProviderContext:
    """What a provider knows about the run: the stack, its folder, and whether to skip shortcuts."""

    stack: str
    root: Path
    # ``--refresh full``: read every secret's access directly, not through an index or event feed.
    full_refresh: bool = False


class Writes(Protocol):
    """One adapter's writes (see :class:`Request` for what each must do).

    Only :meth:`Provider.apply` calls them, after the ownership check; and
    :meth:`Provider.fingerprint_key` calls ``create`` for cloudsync's own key.
    """

    def create(self, request: CreateRequest) -> ValueRecord | None:
        """Create the secret; the record of the value written, if one was."""

    def update(self, request: UpdateRequest) -> ValueRecord | None:
        """Change what ``request.reasons`` names of a secret this stack owns (or adopts)."""

    def restore(self, request: RestoreRequest) -> ValueRecord | None:
        """Bring a soft-deleted secret back, then bring it to ``request.state``."""

    def delete(self, request: DeleteRequest) -> None:
        """Delete a secret this stack owns (``request.before`` is set); gone already is success."""

    def retire(self, request: RetireRequest) -> None:
        """Disable ``request.retirement.version`` where the cloud can (see :class:`RetireRequest`)."""


# A provider reads its own target model (AwsTarget, GcpTarget, ...); covariant, so the
# engine holds any adapter as a Provider[object] without knowing its cloud.
ConfigT = TypeVar("ConfigT", covariant=True)


class Provider(ABC, Generic[ConfigT]):
    """One target of one cloud, configured by its own target model ``ConfigT``.

    The engine calls :meth:`read`, :meth:`apply`, :meth:`read_value`, :meth:`read_values`,
    :meth:`lock` and :meth:`fingerprint_key`; an adapter implements :meth:`read`, :meth:`read_value` and
    :meth:`permissions`, and sets :attr:`writer` to its :class:`Writes`, which only
    :meth:`apply` calls.
    """

    kind: ClassVar[str]
    limits: ClassVar[RateLimits] = RateLimits()
    writer: Writes  # the adapter's writes, set by its __init__

    def __init__(self, target: str, config: ConfigT, context: ProviderContext) -> None:
        self.target = target
        self.config = config
        self.context = context
        self.api_calls: Counter[str] = Counter()  # operation name -> calls, for benchmarks

    @abstractmethod
    def read(self, query: ReadQuery) -> Sequence[RemoteSecret]:
        """Every secret in the target, in bulk; readers filled for owned and ``query.access``."""

    def apply(self, request: WriteRequest) -> ValueRecord | None:
        """Perform one change; return the record of the value written, if one was.

        The one place that checks ownership and dispatches on the action, for every adapter.
        """
        if is_reserved(request.name):
            raise ProviderError(f"{request.name} is cloudsync's own secret (fingerprint key or apply lock); "
                                "no plan changes it", code="Reserved")
        check_ownership(request)
        match request:
            case CreateRequest():
                return self.writer.create(request)
            case UpdateRequest():
                return self.writer.update(request)
            case RestoreRequest():
                return self.writer.restore(request)
            case DeleteRequest():
                if request.before is not None:  # else this run saw nothing to delete: already gone
                    self.writer.delete(request)
                return None
            case RetireRequest():
                self.writer.retire(request)
                return None
            case _:
                assert_never(request)

    def scan_access(self, query: ReadQuery, secrets: Sequence[RemoteSecret]) -> AccessScan:
        """Everyone who can read each of ``secrets`` (as :meth:`read` returned them), in bulk.

        The default knows only the per-secret grants :meth:`read` filled in; a cloud with
        broader scopes (accounts, projects, vaults, resource groups...) overrides it and adds
        the grants found there, in a few calls per target. A secret whose readers were not
        read is reported as not scanned, so the report says "unknown", never "none".
        """
        readers = {s.name: tuple(EffectiveReader(p, Via.SECRET, s.name, "per-secret grant") for p in sorted(s.readers))
                   for s in secrets if s.readers is not None and not s.deleted}
        return AccessScan(readers=readers)

    def versions(self, name: str) -> Sequence[VersionInfo] | None:
        """Every version of one secret, newest first, metadata only; None when the target cannot list them.

        An explicit audit (``cloudsync access --versions``) calls it once per secret; plans never do.
        """
        return None

    @abstractmethod
    def read_value(self, name: str) -> SecretValue:
        """The current plaintext value of one secret; :class:`NotFoundError` when it has none."""

    def read_values(self, names: Sequence[str]) -> Mapping[str, SecretValue | ProviderError]:
        """The current value of each of ``names``, or the error of reading that one.

        Each name's outcome is its own: a secret without a value is a :class:`NotFoundError`
        for that name, a denied one a permission error for that name, never a failure of the
        others. The default reads them one at a time with :meth:`read_value` (GCP and Azure
        have no batch read); a cloud with one (AWS ``BatchGetSecretValue``) overrides it.
        """
        found: dict[str, SecretValue | ProviderError] = {}
        for name in dict.fromkeys(names):
            try:
                found[name] = self.read_value(name)
            except ProviderError as exc:
                found[name] = detached(exc)
        return found

    @classmethod
    @abstractmethod
    def permissions(cls) -> Mapping[Operation, Sequence[str]]:
        """The cloud permissions each operation needs, least privilege."""

    @classmethod
    def render_permissions(cls, target_config: Any, stack_name: str, target: str) -> str:
        """What ``cloudsync permissions --target T`` prints: by default, :meth:`permissions` as JSON.

        A cloud overrides it to print what its operators paste (an IAM policy, custom roles).
        """
        data = {op.value: list(actions) for op, actions in cls.permissions().items()}
        return json.dumps({"target": target, "provider": cls.kind, "permissions": data}, indent=2)

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

    def close(self) -> None:
        """Release connections."""

    # -- the per-target fingerprint key, kept as a managed secret inside the target --

    def fingerprint_key(self, *, create: bool) -> bytes | None:
        """This target's fingerprint key; create it when absent and ``create``.

        Only :class:`NotFoundError` means "no key yet": after a passing outage, writing a new
        key would make every stored fingerprint stale and rewrite every value. Transient
        errors are retried, reading and creating alike.
        """
        name = fingerprint_key_name(self.context.stack)
        try:
            return self._retrying(lambda: self.read_value(name).reveal())
        except NotFoundError:
            pass
        if not create:
            return None
        value = SecretValue(_random.token_hex(32))
        request = CreateRequest(
            reasons=frozenset({Reason.VALUE}), stack=self.context.stack, name=name,
            state=SecretState(name=name, labels={}, expires_at=None, readers=None,
                              description="cloudsync fingerprint key (HMAC key for value fingerprints)"),
            value=value, record=ValueRecord(written_at=now()),
            # One token per key value: a retry resumes this write, never another value's.
            token=f"fpkey-{self.context.stack}-{_random.token_hex(8)}")
        self._retrying(lambda: self.writer.create(request))  # not apply(): no plan may write this name
        return value.reveal()

    def _retrying(self, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except ProviderError as exc:
                if not exc.transient or attempt >= KEY_ATTEMPTS:
                    raise
                time.sleep(min(10.0, exc.retry_after if exc.retry_after is not None else 0.2 * 2**attempt))


def detached(error: ProviderError) -> ProviderError:
    """``error`` without its traceback and chained exceptions, to be kept as a result.

    A kept exception holds the frames it passed through, and those hold the run's state: a
    reference cycle that kept a whole plan alive (see :func:`cloudsync.values.sources.read_once`).
    """
    error.__traceback__ = None
    error.__context__ = error.__cause__ = None
    return error


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
        if record.retire is not None:
            meta[RETIRE_LABEL] = record.retire.encode()
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
            retire=Retirement.decode(labels[RETIRE_LABEL]) if RETIRE_LABEL in labels else None,
        )
    return DecodedMeta(
        user_labels=user, managed=managed, owner=owner, record=record,
        protected=labels.get(PROTECT_LABEL) == "true",
        purge_on_delete=labels.get(PURGE_LABEL) == "true",
    )

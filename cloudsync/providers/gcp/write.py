"""Perform one planned change on Secret Manager.

A change is a few RPCs (create, add a version, record it in the labels, set readers,
disable old versions). The engine retries a change whose error is transient, so each
change keeps its progress under the request's token and a retry resumes where the last
attempt stopped: a retried value write never adds a second version.

Concurrency: metadata updates carry the etag that was read. A mismatch
(FAILED_PRECONDITION; ABORTED for IAM) is looked at, not blindly retried: if the fields
cloudsync writes are unchanged since they were read (the etag moved for another reason,
e.g. a version was added), the write is repeated with the new etag; if they already hold
the desired values (an earlier attempt landed), it is done; otherwise someone changed the
secret since the plan and the change fails as stale, never overwriting their edit.
"""

from __future__ import annotations

import hmac
import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from google.cloud import secretmanager
from google.iam.v1 import iam_policy_pb2
from google.protobuf import field_mask_pb2

from cloudsync.plan.actions import Reason
from cloudsync.providers.base import (
    CreateRequest,
    DeleteRequest,
    ProviderError,
    RestoreRequest,
    RetireRequest,
    SecretState,
    StateRequest,
    UpdateRequest,
    ValueRecord,
    decode_meta,
    encode_meta,
    may_retire,
    not_owned,
    now,
    retire_refused,
    without_marker,
)
from cloudsync.providers.gcp.calls import Caller
from cloudsync.providers.gcp.mapping import (
    DESCRIPTION_KEY,
    GRANTED,
    GRANTED_LABEL,
    PolicyView,
    Snapshot,
    secret_id,
    snapshot,
    snapshot_of,
    version_number,
)
from cloudsync.providers.gcp.payload import crc32c
from cloudsync.providers.gcp.pruning import VERSIONS_KEY, encode, plan_pruning, written_by_cloudsync
from cloudsync.providers.gcp.read import Gone, fetch_latest, fetch_policy
from cloudsync.providers.gcp.rules import GcpTarget
from cloudsync.values.secret import SecretValue

log = logging.getLogger("cloudsync")

_CONFLICT = ("FAILED_PRECONDITION", "ABORTED")


def stale(name: str, what: str = "it") -> ProviderError:
    return ProviderError(f"secret {name} changed in the target since {what} was read; plan again",
                         code="STALE", hint="run plan again to see the current state; nothing was overwritten")


def replication_for(config: GcpTarget) -> Any:
    """The replication policy of new secrets: none for regional, else user-managed or automatic."""
    if config.location:
        return None
    if config.replication:
        replicas = [secretmanager.Replication.UserManaged.Replica(location=loc) for loc in config.replication]
        return secretmanager.Replication(user_managed=secretmanager.Replication.UserManaged(replicas=replicas))
    return secretmanager.Replication(automatic=secretmanager.Replication.Automatic())


@dataclass
class _Progress:
    snap: Snapshot | None = None  # the secret as last seen (read, created or updated by us)
    created: bool = False
    version: int | None = None
    written: datetime | None = None  # the value record's written_at, fixed once so retries agree
    metadata_done: bool = False
    access_done: bool = False
    kept: frozenset[int] | None = None  # cloudsync's versions the record keeps naming after this write
    to_disable: list[tuple[int, str]] | None = None  # (number, etag) of cloudsync's enabled versions beyond keep


@dataclass(frozen=True)
class _Fields:
    """The fields of a secret cloudsync writes, for comparisons."""

    labels: dict[str, str]
    annotations: dict[str, str]
    expire: int | None

    @classmethod
    def of(cls, snap: Snapshot) -> _Fields:
        return cls(dict(snap.labels), dict(snap.annotations), _seconds(snap.expire_time))

    def masked(self, mask: list[str]) -> tuple[Any, ...]:
        return tuple(getattr(self, {"labels": "labels", "annotations": "annotations",
                                    "expire_time": "expire"}[path]) for path in mask)


def _seconds(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


class Writer:
    """Applies the writes of one target."""

    def __init__(self, client: Any, caller: Caller, parent: str, config: GcpTarget) -> None:
        self.client = client
        self.caller = caller
        self.parent = parent
        self.config = config
        self._progress: dict[str, _Progress] = {}
        self._lock = threading.Lock()

    def full_name(self, name: str) -> str:
        return f"{self.parent}/secrets/{name}"

    # -- the four writes --------------------------------------------------------------

    def create(self, request: CreateRequest) -> ValueRecord | None:
        return self._write(request)

    def update(self, request: UpdateRequest) -> ValueRecord | None:
        return self._write(request)

    def restore(self, request: RestoreRequest) -> ValueRecord | None:
        raise ProviderError(f"secret {request.name}: Secret Manager has no soft delete, so nothing can be restored",
                            code="Unsupported", hint="plan again: a deleted secret is created anew")

    def delete(self, request: DeleteRequest) -> None:
        """Delete with the read etag. GCP has no soft delete: the secret and its versions are gone."""
        name = self.full_name(request.name)
        snap = snapshot_of(request.before) or self._get(name)
        if snap is None:
            return  # already gone: a retried delete converges
        delete = secretmanager.DeleteSecretRequest(name=name, etag=snap.etag)
        try:
            self.caller("DeleteSecret", self.client.delete_secret, delete, resource=name)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                return
            if exc.code in _CONFLICT:
                raise stale(request.name) from None
            raise

    def retire(self, request: RetireRequest) -> None:
        """DisableSecretVersion on a superseded version cloudsync recorded, then drop its marker.

        Versions carry no labels: the proof that cloudsync wrote one is its number in the
        secret's own labels (the value record or the retirement marker). Never destroyed:
        a disabled version can be enabled again if a consumer turns out to need it.
        """
        name, version = self.full_name(request.name), request.retirement.version
        snap = self._get(name)
        if snap is None:
            raise ProviderError(f"secret {request.name} no longer exists in the target; plan again", code="NOT_FOUND")
        meta = decode_meta(snap.labels)
        if meta.owner != request.stack:
            raise not_owned(request, meta.owner, managed=meta.managed)
        latest = fetch_latest(self.client, self.caller, name)
        if not may_retire(request, str(latest.number) if latest else None, meta.record) or not version.isdigit():
            raise retire_refused(request)
        path = f"{name}/versions/{version}"
        try:
            found = self.caller("GetSecretVersion", self.client.get_secret_version,
                                secretmanager.GetSecretVersionRequest(name=path), resource=name)
        except ProviderError as exc:
            if exc.code != "NOT_FOUND":
                raise
            found = None  # destroyed meanwhile: nothing left to disable
        if found is not None and found.state == secretmanager.SecretVersion.State.ENABLED:
            disable = secretmanager.DisableSecretVersionRequest(name=path, etag=found.etag)
            self.caller("DisableSecretVersion", self.client.disable_secret_version, disable, resource=name)
        kept = without_marker(meta.record, version)
        if kept is not None:
            state = SecretState(name=request.name, labels=meta.user_labels,
                                description=snap.annotations.get(DESCRIPTION_KEY) or None,
                                expires_at=snap.expire_time, readers=None, protected=meta.protected,
                                purge_on_delete=meta.purge_on_delete)
            self._update_metadata(name, request.stack, state, snap, kept)

    def _write(self, request: CreateRequest | UpdateRequest) -> ValueRecord | None:
        name, state = self.full_name(request.name), request.state
        creating = isinstance(request, CreateRequest)
        with self._lock:
            progress = self._progress.setdefault(request.token, _Progress())
        if progress.snap is None:
            progress.snap = None if creating else snapshot_of(request.before)
        record = request.record
        if request.value is not None and progress.written is None:
            progress.written = record.written_at if record and record.written_at else now()
        if progress.snap is None:
            # A new secret's first version is number 1: its value record goes on CreateSecret, so the
            # labels need no UpdateSecret afterwards (2 writes per create, not 3). Should the version
            # get another number (someone added one in between), the update below corrects the record.
            first = replace(record or ValueRecord(), version="1", written_at=progress.written) \
                if request.value is not None else None
            progress.snap, progress.created = self._create_or_adopt(name, request, first)
        if request.value is not None:
            if progress.version is None:
                progress.version = self._written_before(name, request) or self._add_version(name, request.value)
            record = replace(record or ValueRecord(), version=str(progress.version), written_at=progress.written)
            if progress.to_disable is None:
                # A new secret has no earlier versions of cloudsync's (its labels presume version 1).
                fresh = creating or progress.created
                progress.kept, progress.to_disable = self._plan_pruning(name, progress.snap, progress.version,
                                                                        record, fresh=fresh)
        if not progress.metadata_done:
            progress.snap = self._update_metadata(name, request.stack, state, progress.snap, record, progress.kept)
            progress.metadata_done = True
        if state.readers is not None and not progress.access_done and (
                progress.created or creating or Reason.ACCESS in request.reasons):
            self._set_readers(name, state.readers, progress.snap, fresh=progress.created)
            progress.access_done = True
            if not state.readers and GRANTED_LABEL in progress.snap.labels:
                # Every reader is revoked now: drop the label that makes plans read this policy directly.
                progress.snap = self._update_metadata(name, request.stack, state, replace(progress.snap, policy=None),
                                                      record)
        if progress.to_disable:
            self._disable_old(name, progress.to_disable)
            progress.to_disable = []
        with self._lock:
            self._progress.pop(request.token, None)
        return record if request.value is not None else None

    # -- steps ------------------------------------------------------------------------

    def _get(self, name: str) -> Snapshot | None:
        try:
            secret = self.caller("GetSecret", self.client.get_secret,
                                 secretmanager.GetSecretRequest(name=name), resource=name)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise
        return snapshot(secretmanager.Secret.pb(secret))

    def _create_or_adopt(self, name: str, request: StateRequest, record: ValueRecord | None) -> tuple[Snapshot, bool]:
        """Create the secret with its metadata and the record of its first version; a retried create finds ours."""
        state = request.state
        granted = {GRANTED_LABEL: GRANTED} if state.readers else {}
        annotations = {DESCRIPTION_KEY: state.description} if state.description else {}
        if record is not None:
            annotations[VERSIONS_KEY] = encode([1])  # the record of version 1, like the labels' (see _write)
        secret = secretmanager.Secret(
            labels={**state.labels, **encode_meta(request.stack, state, record), **granted},
            annotations=annotations, replication=replication_for(self.config))
        if state.expires_at is not None:
            secret.expire_time = state.expires_at
        create = secretmanager.CreateSecretRequest(parent=self.parent, secret_id=request.name, secret=secret)
        try:
            created = self.caller("CreateSecret", self.client.create_secret, create, resource=name)
            return snapshot(secretmanager.Secret.pb(created)), True
        except ProviderError as exc:
            if exc.code != "ALREADY_EXISTS":
                raise
        existing = self._get(name)
        if existing is None:
            raise ProviderError(f"secret {request.name} was deleted while it was being created", code="NOT_FOUND",
                                transient=True)  # a retry creates it
        meta = decode_meta(existing.labels)
        if meta.owner != request.stack:
            raise not_owned(request, meta.owner, managed=meta.managed)
        return existing, False

    def _written_before(self, name: str, request: StateRequest) -> int | None:
        """The latest version when it already holds this very value, else None.

        AddSecretVersion has no idempotency token: an apply killed between adding a version
        and the labels that record it leaves a latest version the labels do not name. The
        rerun compares that version's value with the one it would write (in memory, never
        shown) and records it instead of adding an identical second version.
        """
        before = request.before
        if before is None or request.value is None or not before.value_drifted or not before.current_version:
            return None
        number = before.current_version.split(" ", 1)[0]
        if not number.isdigit():
            return None
        version = f"{name}/versions/{number}"
        try:
            found = self.caller("AccessSecretVersion", self.client.access_secret_version,
                                secretmanager.AccessSecretVersionRequest(name=version), resource=name)
        except ProviderError:
            return None  # not readable: write the value as planned
        if not hmac.compare_digest(bytes(found.payload.data), request.value.reveal()):
            return None
        log.debug("version %s of %s already holds the value; it is recorded, not written again", number,
                  secret_id(name))
        return int(number)

    def _add_version(self, name: str, value: SecretValue) -> int:
        data = value.reveal()
        payload = secretmanager.SecretPayload(data=data, data_crc32c=crc32c(data))
        request = secretmanager.AddSecretVersionRequest(parent=name, payload=payload)
        try:
            version = self.caller("AddSecretVersion", self.client.add_secret_version, request, resource=name)
        except ProviderError as exc:
            if exc.code == "NOT_FOUND":
                raise ProviderError(f"secret {secret_id(name)} no longer exists in the target; plan again",
                                    code="NOT_FOUND") from None
            raise
        return version_number(version.name)

    def _desired(self, stack: str, state: SecretState, snap: Snapshot, record: ValueRecord | None,
                 kept: frozenset[int] | None) -> _Fields:
        annotations = dict(snap.annotations)
        if state.description:
            annotations[DESCRIPTION_KEY] = state.description
        else:
            annotations.pop(DESCRIPTION_KEY, None)
        if kept is not None:
            annotations[VERSIONS_KEY] = encode(kept)
        labels = {**state.labels, **encode_meta(stack, state, record)}
        if state.readers or (snap.policy is not None and snap.policy.readers):
            labels[GRANTED_LABEL] = GRANTED  # readers now, or ones about to be revoked: see GRANTED_LABEL
        return _Fields(labels, annotations, _seconds(state.expires_at))

    def _update_metadata(self, name: str, stack: str, state: SecretState, snap: Snapshot,
                         record: ValueRecord | None, kept: frozenset[int] | None = None) -> Snapshot:
        """One UpdateSecret with a mask of exactly the fields that differ, under the read etag.

        ``kept``, after a value write: the versions of cloudsync's that the record names from now on.
        """
        want = self._desired(stack, state, snap, record, kept)
        have = _Fields.of(snap)
        mask = [path for path, a, b in (("labels", want.labels, have.labels),
                                        ("annotations", want.annotations, have.annotations),
                                        ("expire_time", want.expire, have.expire)) if a != b]
        if not mask:
            return snap
        etag = snap.etag
        for _ in range(2):
            try:
                updated = self._send_update(name, etag, want, state, mask)
                return replace(updated, policy=snap.policy, latest=snap.latest)
            except ProviderError as exc:
                if exc.code == "NOT_FOUND":
                    raise ProviderError(f"secret {secret_id(name)} no longer exists in the target; plan again",
                                        code="NOT_FOUND") from None
                if exc.code not in _CONFLICT:
                    raise
            fresh = self._get(name)
            if fresh is None:
                raise ProviderError(f"secret {secret_id(name)} no longer exists in the target; plan again",
                                    code="NOT_FOUND")
            current = _Fields.of(fresh)
            if current.masked(mask) == want.masked(mask):
                return replace(fresh, policy=snap.policy, latest=snap.latest)  # an earlier attempt landed
            if current.masked(mask) != have.masked(mask):
                raise stale(secret_id(name))
            etag = fresh.etag  # only the etag moved: what we write is still what we read
        raise stale(secret_id(name))

    def _send_update(self, name: str, etag: str, want: _Fields, state: SecretState, mask: list[str]) -> Snapshot:
        secret = secretmanager.Secret(name=name, etag=etag, labels=want.labels, annotations=want.annotations)
        if state.expires_at is not None:
            secret.expire_time = state.expires_at
        request = secretmanager.UpdateSecretRequest(secret=secret, update_mask=field_mask_pb2.FieldMask(paths=mask))
        updated = self.caller("UpdateSecret", self.client.update_secret, request, resource=name)
        return snapshot(secretmanager.Secret.pb(updated))

    def _set_readers(self, name: str, readers: frozenset[str], snap: Snapshot, *, fresh: bool) -> None:
        """Make the unconditional secretAccessor binding exactly ``readers``; keep every other binding."""
        policy = snap.policy if snap.policy is not None and snap.policy.confirmed else None
        if policy is None:
            if fresh and not readers:
                return  # a new secret's policy is empty already
            # A secret we just created has an empty policy; otherwise read it (retried create).
            policy = PolicyView(etag=b"", version=1, bindings=()) if fresh else self._policy(name)
        for _ in range(2):
            if policy.readers == readers:
                return  # compared as a set: IAM keeps bindings in its own order, not the one sent
            desired = policy.with_readers(readers)
            request = iam_policy_pb2.SetIamPolicyRequest(resource=name, policy=desired.to_pb())
            try:
                self.caller("SetIamPolicy", self.client.set_iam_policy, request, resource=name)
                return
            except ProviderError as exc:
                if exc.code not in _CONFLICT:
                    raise
            current = self._policy(name)
            if current.readers == readers:
                return  # an earlier attempt landed
            if set(current.bindings) != set(policy.bindings):
                raise stale(secret_id(name), "its IAM policy")
            policy = current
        raise stale(secret_id(name), "its IAM policy")

    def _policy(self, name: str) -> PolicyView:
        try:
            return fetch_policy(self.client, self.caller, name)
        except Gone:
            raise ProviderError(f"secret {secret_id(name)} no longer exists in the target; plan again",
                                code="NOT_FOUND") from None

    def _plan_pruning(self, name: str, snap: Snapshot, written: int, record: ValueRecord,
                      *, fresh: bool) -> tuple[frozenset[int], list[tuple[int, str]]]:
        """The versions of cloudsync's to keep naming, and those beyond ``keep_versions`` to disable.

        Only versions cloudsync's own records name count or are disabled (see pruning.py);
        never the one just written, never one awaiting its retirement. The versions are listed
        only when some of cloudsync's fall beyond ``keep_versions``; the ones to disable stay
        on the record until a later write sees them disabled, so an apply that stops halfway
        never forgets a version it still has to disable.
        """
        ours = frozenset() if fresh else written_by_cloudsync(snap.labels, snap.annotations)
        pruning = plan_pruning(ours, written, int(self.config.keep_versions),
                               record.retire.version if record.retire else None)
        if not pruning.beyond:
            return pruning.kept, []
        enabled: dict[int, str] = {}
        token = ""
        while True:
            request = secretmanager.ListSecretVersionsRequest(parent=name, page_size=1000, page_token=token)
            page = self.caller("ListSecretVersions", self.client.list_secret_versions, request, resource=name)
            for version in page.versions:
                if version.state == secretmanager.SecretVersion.State.ENABLED:
                    enabled[version_number(version.name)] = version.etag
            token = page.next_page_token
            if not token:
                break
        to_disable = [(number, enabled[number]) for number in pruning.beyond if number in enabled]
        return pruning.kept | {number for number, _ in to_disable}, to_disable

    def _disable_old(self, name: str, versions: list[tuple[int, str]]) -> None:
        """DisableSecretVersion under the etag listed; never destroy."""
        for number, etag in versions:
            request = secretmanager.DisableSecretVersionRequest(name=f"{name}/versions/{number}", etag=etag)
            try:
                self.caller("DisableSecretVersion", self.client.disable_secret_version, request, resource=name)
            except ProviderError as exc:
                if exc.code not in ("NOT_FOUND", *_CONFLICT):
                    raise
                # Someone changed that version since we listed it: their decision stands.
                log.debug("version %s of %s changed meanwhile; left as it is", number, secret_id(name))

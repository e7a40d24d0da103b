"""Applying one change to a vault: values, metadata, soft delete, recovery, purge, readers.

Key Vault's long-running operations (delete, recover) are waited for by polling metadata
only: the deleted secret appearing under ``/deletedsecrets``, the recovered secret listing
its versions again. (The SDK's recover poller polls by reading the value; cloudsync does not
read a value it does not need.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from cloudsync.plan.actions import Action, Reason
from cloudsync.providers.azure.client import WRITE_RETRIES
from cloudsync.providers.azure.errors import azure_call, service_code
from cloudsync.providers.azure.rbac import Grant, Readers, check_principal
from cloudsync.providers.azure.read import UNKNOWN_VERSION, AzureFacts, Listed, StateReader, cloudsync_version
from cloudsync.providers.azure.tags import check, created_stamp, tags_for
from cloudsync.providers.base import (
    RETIRE_LABEL,
    CreateRequest,
    DeleteRequest,
    NotFoundError,
    ProviderError,
    RemoteSecret,
    RestoreRequest,
    Retirement,
    RetireRequest,
    SecretState,
    StateRequest,
    UpdateRequest,
    ValueRecord,
    decode_meta,
    facts_of,
    is_reserved,
    may_retire,
    not_owned,
    retire_refused,
)
from cloudsync.values.secret import SecretValue

log = logging.getLogger("cloudsync")

METADATA_REASONS = frozenset({Reason.LABELS, Reason.DESCRIPTION, Reason.EXPIRY, Reason.OWNERSHIP})
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"
BUSY = frozenset({"ObjectIsBeingDeleted", "ObjectIsBeingRecovered"})
WAIT_TIMEOUT = 120.0  # seconds for a delete or recovery to complete
BUSY_RETRY_AFTER = 2.0


class _DeletedName(Exception):
    """A write hit a soft-deleted name (409 ObjectIsDeletedButRecoverable)."""


def wait_for(done: Callable[[], bool], what: str, *, timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``done`` with growing pauses (0.1 s to 2 s) until it holds; transient error on timeout."""
    deadline = time.monotonic() + timeout
    pause = 0.1
    while not done():
        if time.monotonic() >= deadline:
            raise ProviderError(f"{what} did not complete within {timeout:.0f} s", code="Timeout", transient=True)
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _text(value: SecretValue) -> str:
    try:
        return value.reveal_text()
    except UnicodeDecodeError:
        raise ProviderError("Key Vault holds text values; this value is not valid UTF-8",
                            code="BinaryValue", hint="store binary data base64-encoded") from None


def _grants(before: RemoteSecret | None) -> tuple[Grant, ...]:
    facts = facts_of(before, AzureFacts)
    return facts.grants if facts is not None else ()


class SecretWriter:
    """Performs the four writes against one vault."""

    def __init__(self, secrets: SecretClient, reader: StateReader, readers: Readers | None) -> None:
        self.secrets = secrets
        self.reader = reader
        self.readers = readers

    def create(self, request: CreateRequest) -> ValueRecord | None:
        _check_readers(request.state)
        if request.value is None:
            raise ProviderError(f"{request.name}: a Key Vault secret always holds a value", code="ValueRequired",
                                hint="declare a value source, or create the secret elsewhere and import it")
        self._claim(request)
        return self._write(request)

    def update(self, request: UpdateRequest) -> ValueRecord | None:
        _check_readers(request.state)
        return self._write(request)

    def restore(self, request: RestoreRequest) -> ValueRecord | None:
        _check_readers(request.state)
        self.recover(request.name)
        return self._write(request)

    def _write(self, request: StateRequest) -> ValueRecord | None:
        state = request.state
        record = None
        if request.value is not None:
            record = self.write_value(request, request.value)
        elif request.reasons & METADATA_REASONS:
            self.write_metadata(request)
        if state.readers is not None and (request.action is Action.CREATE or Reason.ACCESS in request.reasons):
            self.sync_readers(request, state.readers)
        return record

    # -- values and metadata --------------------------------------------------------------

    def _claim(self, request: CreateRequest) -> None:
        """Before a create: the name is free, or it is this stack's own secret (a retried create)."""
        versions = self.reader.versions(request.name)
        if not versions:
            return  # free, or soft-deleted (the write will say so)
        owned = cloudsync_version(versions)
        owner = decode_meta(owned.tags).owner if owned is not None else None
        if owner != request.stack:
            raise not_owned(request, owner, managed=owned is not None)
        if is_reserved(request.name):
            raise ProviderError(f"{request.name} exists but could not be read; the fingerprint key is never "
                                "overwritten", code="AlreadyExists",
                                hint="grant cloudsync's identity Microsoft.KeyVault/vaults/secrets/getSecret/action "
                                     "(`cloudsync permissions --target <target>`)")

    def write_value(self, request: StateRequest, value: SecretValue) -> ValueRecord:
        """A new version with the value and every tag, then stamped with its own id (see tags.py)."""
        state = request.state
        base = request.record or ValueRecord()
        text = _text(value)
        tags = tags_for(request.stack, state, base, include_version=False)
        check(request.name, {**tags, "cloudsync-version": "", "cloudsync-created": ""}, state.description)
        try:
            version, created = self._set(request.name, text, tags, state)
        except _DeletedName:
            self._recover_own(request)
            version, created = self._set(request.name, text, tags, state)
        record = replace(base, version=version)
        self._stamp(request.name, version, tags_for(request.stack, state, record, created=created))
        return record

    def _set(self, name: str, text: str, tags: dict[str, str], state: SecretState,
             expires: bool = True) -> tuple[str, str | None]:
        with azure_call("set_secret", name, value=text):
            try:
                written = self.secrets.set_secret(name, text, tags=tags, content_type=state.description,
                                                  expires_on=state.expires_at if expires else None, enabled=True,
                                                  **WRITE_RETRIES)
            except ResourceExistsError as exc:
                inner = service_code(exc)[1]
                if inner == DELETED_BUT_RECOVERABLE:
                    raise _DeletedName() from None
                if inner in BUSY:
                    raise ProviderError(f"{name} is being deleted or recovered ({inner})", code=inner,
                                        transient=True, retry_after=BUSY_RETRY_AFTER) from None
                raise
        # Keep only metadata: the response carries the value too.
        version, created = written.properties.version, created_stamp(written.properties.created_on)
        del written
        if not version:
            raise ProviderError(f"{name}: the vault did not report the version it wrote", code="NoVersion")
        return version, created

    def _stamp(self, name: str, version: str, tags: dict[str, str]) -> None:
        with azure_call("update_secret", name):
            self.secrets.update_secret_properties(name, version, tags=tags, **WRITE_RETRIES)

    def write_metadata(self, request: StateRequest) -> None:
        """Tags, description, expiry of the current version, without a new version."""
        before, state = request.before, request.state
        facts = facts_of(before, AzureFacts)
        created = facts.created_tag if facts is not None else None
        tags = tags_for(request.stack, state, request.record, created=created)
        check(request.name, tags, state.description)
        if before is not None and before.expires_at is not None and state.expires_at is None:
            self._rewrite_without_expiry(request, state, before)
            return
        with azure_call("update_secret", request.name):
            self.secrets.update_secret_properties(
                request.name, tags=tags, content_type=state.description or "", expires_on=state.expires_at,
                enabled=True, **WRITE_RETRIES)

    def _rewrite_without_expiry(self, request: StateRequest, state: SecretState, before: RemoteSecret) -> None:
        """Drop an expiry: Key Vault documents no way to remove one from a version, so the
        current value (read into memory only) becomes a new version without it."""
        with azure_call("get_secret", request.name):
            current = self.secrets.get_secret(request.name)
        text = current.value or ""
        del current
        record = request.record
        ours = record is not None and not before.value_drifted and before.current_version not in (None, UNKNOWN_VERSION)
        facts = facts_of(before, AzureFacts)
        tags = tags_for(request.stack, state, record, include_version=not ours,
                        created=facts.created_tag if facts is not None else None)
        version, created = self._set(request.name, text, tags, state, expires=False)
        if ours and record is not None:
            self._stamp(request.name, version, tags_for(request.stack, state, replace(record, version=version),
                                                        created=created))

    def retire(self, request: RetireRequest) -> None:
        """``enabled: false`` on a superseded version whose own tags say this stack wrote it.

        One versions listing (metadata only) holds everything: tags belong to a version, so
        the version to retire still carries cloudsync's tags (a version written by anyone else
        carries none and is refused, whatever the records say), and the newer version that
        superseded it carries the marker naming it. That marker, or a later ``created``, is
        the proof that the version is not current (``created`` has one-second resolution).
        """
        name, version = request.name, request.retirement.version
        versions = self.reader.versions(name)
        target = next((v for v in versions if v.version == version), None)
        if target is None:
            if not versions:
                raise NotFoundError(f"{name} has no versions any more; nothing was retired", code="NotFound",
                                    hint="plan again")
            raise retire_refused(request)
        meta = decode_meta(target.tags)
        if meta.owner != request.stack:
            raise retire_refused(request)
        others = [v for v in versions if v.version != version]
        markers = [v for v in others if _marker_of(v) == version and decode_meta(v.tags).owner == request.stack]
        later = any(int(v.created or 0) > int(target.created or 0) for v in others)
        if not (markers or later) or not may_retire(request, None, None):
            raise retire_refused(request)
        if target.enabled is not False:
            with azure_call("update_secret", name):
                self.secrets.update_secret_properties(name, version, enabled=False, **WRITE_RETRIES)
        for holder in markers:  # the current version's tags are what the next plan lists
            if holder.version:
                self._stamp(name, holder.version, {k: v for k, v in holder.tags.items() if k != RETIRE_LABEL})

    # -- delete, recover, purge -------------------------------------------------------

    def delete(self, request: DeleteRequest) -> None:
        name, before = request.name, request.before
        if before is None or not before.deleted:
            try:
                with azure_call("delete_secret", name):
                    self.secrets.begin_delete_secret(name)  # returns once Key Vault accepted the delete
                wait_for(lambda: self._deleted_visible(name), f"deletion of {name}")
            except ProviderError as exc:
                if exc.code != "NotFound":
                    raise  # NotFound: already deleted (a retried delete converges)
        if self.readers is not None and _grants(before):
            self.readers.revoke(name, _grants(before))  # no grant outlives its secret
        if before is not None and before.purge_on_delete:
            self.purge(name, before)

    def _deleted_visible(self, name: str) -> bool:
        with azure_call("get_deleted_secret", name):
            try:
                self.secrets.get_deleted_secret(name)
            except ResourceNotFoundError:
                return False
            except HttpResponseError as exc:
                if exc.status_code == 403:
                    return True  # may not read deleted secrets: assume done, as the SDK's poller does
                raise
        return True

    def purge(self, name: str, before: RemoteSecret) -> None:
        facts = facts_of(before, AzureFacts)
        level = (facts.recovery_level if facts is not None else None) or ""
        if level and "Purgeable" not in level:
            log.warning("%s: not purged: the vault has purge protection (recovery level %s); Key Vault purges it "
                        "when its retention period ends", name, level)
            return
        with azure_call("purge_secret", name):
            try:
                self.secrets.purge_deleted_secret(name, **WRITE_RETRIES)
            except ResourceNotFoundError:
                return  # already purged
            except ResourceExistsError as exc:
                raise ProviderError(f"{name} cannot be purged yet ({service_code(exc)[1] or 'Conflict'})",
                                    code="PurgeTooSoon", transient=True, retry_after=BUSY_RETRY_AFTER) from None

    def recover(self, name: str) -> None:
        """Bring a soft-deleted secret back and wait until it is usable."""
        try:
            with azure_call("recover_secret", name):
                try:
                    self.secrets.begin_recover_deleted_secret(name)
                except ResourceExistsError as exc:
                    raise ProviderError(f"{name} cannot be recovered yet ({service_code(exc)[1] or 'Conflict'})",
                                        code="RecoverTooSoon", transient=True,
                                        retry_after=BUSY_RETRY_AFTER) from None
        except ProviderError as exc:
            if exc.code != "NotFound":
                raise
            if self.reader.versions(name):
                return  # live already: a retried restore converges
            raise NotFoundError(f"{name} is neither live nor soft-deleted in the vault", code="NotFound") from None
        wait_for(lambda: bool(self.reader.versions(name)), f"recovery of {name}")

    def _recover_own(self, request: StateRequest) -> None:
        """A create met a soft-deleted name: recover it when it is this stack's, never someone else's."""
        name = request.name
        with azure_call("get_deleted_secret", name):
            try:
                deleted = self.secrets.get_deleted_secret(name)
            except ResourceNotFoundError:
                raise ProviderError(f"{name} is still being deleted", code="ObjectIsBeingDeleted", transient=True,
                                    retry_after=BUSY_RETRY_AFTER) from None
        owner = decode_meta(deleted.properties.tags or {}).owner
        if owner != request.stack:
            raise ProviderError(
                f"{name} is soft-deleted in the vault and not owned by this stack; cloudsync does not recover it",
                code=DELETED_BUT_RECOVERABLE,
                hint="recover or purge it (az keyvault secret recover / purge), or choose another name")
        log.info("%s: recovering this stack's soft-deleted secret before writing it", name)
        self.recover(name)
        if is_reserved(name):
            raise ProviderError(f"{name} was soft-deleted and has been recovered; run again to use it",
                                code="Recovered", transient=True)

    # -- readers ------------------------------------------------------------------------

    def sync_readers(self, request: StateRequest, wanted: frozenset[str]) -> None:
        if self.readers is None:
            if wanted:
                raise ProviderError(f"{request.name}: readers need the vault's ARM scope", code="RbacNotConfigured",
                                    hint="set subscription_id and resource_group (and vault_name) on the target")
            return
        grants = _grants(request.before)
        have = {g.principal_id for g in grants}
        self.readers.grant(request.name, sorted(wanted - have))
        self.readers.revoke(request.name, [g for g in grants if g.principal_id not in wanted])


def _marker_of(version: Listed) -> str | None:
    """The version id a version's retirement marker names, if it carries one."""
    marker = Retirement.decode(version.tags.get(RETIRE_LABEL, ""))
    return marker.version if marker is not None else None


def _check_readers(state: SecretState) -> None:
    """Refuse reader ids Key Vault would reject, before anything is written."""
    for principal in state.readers or ():
        check_principal(principal)

"""Perform one planned change on a Secrets Manager target.

Order matters because a failure can stop a change halfway, and the next plan must see
what is left to do:

1. ``CreateSecret`` carries the ownership tags, so a secret never exists unowned; its first
   value is written by the following ``PutSecretValue`` (which is what sets the staging label).
2. ``UpdateSecret`` (description, KMS key) before the value, so a new version uses the key.
3. ``PutSecretValue`` with a deterministic ``ClientRequestToken`` (a retry is a no-op) and
   ``VersionStages=[AWSCURRENT, cloudsync]``, which moves both labels atomically.
4. Resource policy (readers), replica regions.
5. Tags last: they hold the value's fingerprint, so a change that failed earlier still
   shows the old fingerprint and the next plan rewrites the value. With ``access_drift:
   changed`` (the default) they also hold the sync mark (a create, whose tags came with
   CreateSecret, writes it with one more TagResource), so the change's last write is the mark's.
   The mark also says since when CloudTrail's policy events on the secret are not cloudsync's
   own: the start of a create, the time of the change's own policy write when it rewrote the
   readers, else what was known before (a change that did not look at the policy vouches for
   nothing new).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any, TypeVar

from cloudsync.plan.actions import Reason
from cloudsync.providers.aws.calls import SecretsManagerApi, is_not_found
from cloudsync.providers.aws.policy import parse_policy, render_policy
from cloudsync.providers.aws.read import StateReader
from cloudsync.providers.aws.remote import (
    CURRENT,
    PREVIOUS,
    STAGE,
    SYNCED_TAG,
    SYSTEM_TAG_PREFIX,
    AwsFacts,
    desired_tags,
    parse_mark,
    sync_mark,
    tag_list,
    to_remote,
    versions_to_stages,
)
from cloudsync.providers.aws.rules import AwsTarget
from cloudsync.providers.base import (
    RETIRE_LABEL,
    CreateRequest,
    DeleteRequest,
    NotFoundError,
    ProviderError,
    RemoteSecret,
    Request,
    RestoreRequest,
    RetireRequest,
    SecretState,
    StateRequest,
    UpdateRequest,
    ValueRecord,
    facts_of,
    may_retire,
    not_owned,
    now,
    retire_refused,
    without_marker,
)
from cloudsync.values.secret import SecretValue

S = TypeVar("S", bound=StateRequest)


def request_token(request: Request, purpose: str) -> str:
    """A ClientRequestToken (32-64 chars; AWS uses it as the version id) unique to this change."""
    digest = hashlib.sha256(f"{request.token}\n{request.name}\n{purpose}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


def value_payload(value: SecretValue) -> dict[str, Any]:
    data = value.reveal()
    try:
        return {"SecretString": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"SecretBinary": data}


def _same_kms_key(actual: str | None, wanted: str) -> bool:
    # ListSecrets reports an ARN; the target may name the key by id, ARN or alias.
    return actual is not None and (actual == wanted or actual.endswith(wanted) or wanted.endswith(actual))


class Writer:
    """Writes of one target."""

    def __init__(self, api: SecretsManagerApi, reader: StateReader, config: AwsTarget) -> None:
        self.api = api
        self.reader = reader
        self.config = config
        self.written: set[str] = set()  # names this writer wrote to (they carry fresh marks)

    # -- the four writes --------------------------------------------------------------

    def create(self, request: CreateRequest) -> ValueRecord | None:
        request = _stamped(request)
        started = self.api.server_now()  # a grant added right after CreateSecret is not cloudsync's
        existing = self._create(request)
        if existing is None:
            return self._sync(request, None, created=True, full=False, started=started)
        return self._sync(request, existing, created=False, full=True)  # a retried create, or one the listing missed

    def update(self, request: UpdateRequest) -> ValueRecord | None:
        return self._sync(_stamped(request), request.before, created=False, full=False)

    def restore(self, request: RestoreRequest) -> ValueRecord | None:
        self._restore(request.name)
        return self._sync(_stamped(request), request.before, created=False, full=True)

    def delete(self, request: DeleteRequest) -> None:
        name = request.name
        before = request.before
        force = before is not None and before.purge_on_delete
        if before is not None and before.deleted and not force:
            return  # already scheduled for deletion
        facts = facts_of(before, AwsFacts)
        if facts is not None and facts.replicas:
            self._set_replicas(name, set())  # AWS refuses to delete a primary that still has replicas
        params: dict[str, Any] = ({"ForceDeleteWithoutRecovery": True} if force
                                  else {"RecoveryWindowInDays": self.config.recovery_window_days})
        for attempt in (1, 2):
            try:
                self.api.call("DeleteSecret", name=name, SecretId=name, **params)
                return
            except ProviderError as exc:
                if is_not_found(exc):
                    return  # already gone: a retried delete converges
                if attempt == 1 and "replica" in exc.message.lower():
                    self._set_replicas(name, set())  # replicas added out of band
                    continue
                if exc.code == "InvalidRequestException" and "deleted" in exc.message.lower() and not force:
                    return  # scheduled for deletion meanwhile
                raise

    def retire(self, request: RetireRequest) -> None:
        """Deprecate a superseded version: take AWSPREVIOUS off it, so no staging label reaches it.

        AWS keeps a version without labels only as deprecated (and deletes it eventually); a
        version that holds no AWSPREVIOUS already (a later write moved it on) needs nothing.
        """
        name, version = request.name, request.retirement.version
        found = self.reader.describe(name)  # after this change's own write: the versions as they are now
        if found is None:
            raise NotFoundError(f"{name} does not exist any more; nothing was retired", code="NotFound",
                                hint="plan again")
        remote = self._remote(found)
        if remote.owner != request.stack:
            raise not_owned(request, remote.owner, managed=remote.managed)
        if not may_retire(request, remote.current_version, remote.record):
            raise retire_refused(request)
        stages = versions_to_stages(found)
        if PREVIOUS in stages.get(version, []):
            self.api.call("UpdateSecretVersionStage", name=name, SecretId=name, VersionStage=PREVIOUS,
                          RemoveFromVersionId=version)
        if without_marker(remote.record, version) is not None:
            self.api.call("UntagResource", name=name, SecretId=name, TagKeys=[RETIRE_LABEL])

    # -- create and restore ------------------------------------------------------------

    def _create(self, request: CreateRequest) -> RemoteSecret | None:
        """CreateSecret; when the name exists, the existing secret if this stack owns it."""
        state = request.state
        tags = desired_tags(request.stack, state, request.record, self.config.replica_regions)
        params: dict[str, Any] = {"Name": request.name, "Tags": tag_list(tags),
                                  "ClientRequestToken": request_token(request, "create")}
        if state.description:
            params["Description"] = state.description
        if self.config.kms_key_id:
            params["KmsKeyId"] = self.config.kms_key_id
        if self.config.replica_regions:
            params["AddReplicaRegions"] = [{"Region": r} for r in sorted(self.config.replica_regions)]
        try:
            self.api.call("CreateSecret", name=request.name, **params)
            return None
        except ProviderError as exc:
            # AWS: InvalidRequestException when the name is scheduled for deletion;
            # moto: ResourceExistsException for that case too.
            if exc.code not in ("ResourceExistsException", "InvalidRequestException"):
                raise
            found = self.reader.describe(request.name)
            if found is None:
                raise
        existing = self._remote(found)
        if existing.owner != request.stack:
            raise not_owned(request, existing.owner, managed=existing.managed)
        if existing.deleted:
            self._restore(request.name)
        return existing

    def _restore(self, name: str) -> None:
        self.api.call("RestoreSecret", name=name, SecretId=name)

    # -- the update path ---------------------------------------------------------------

    def _sync(self, request: StateRequest, before: RemoteSecret | None, *, created: bool,
              full: bool, started: float | None = None) -> ValueRecord | None:
        name, state = request.name, request.state
        record = request.record
        self.written.add(name)
        started = self.api.server_now() if started is None else started
        rewritten: float | None = None
        if not created:
            self._update_secret(name, state, before, writing_value=request.value is not None)
        written: ValueRecord | None = None
        if request.value is not None and record is not None:
            written = record = replace(record, version=self._put_value(request, request.value))
        if state.readers is not None and (bool(state.readers) if created else full or Reason.ACCESS in request.reasons):
            rewritten = self._set_readers(name, state.readers, read_current=not created)
        verified = started if created else rewritten if rewritten is not None else self._verified(name, before)
        if not created:
            facts = facts_of(before, AwsFacts)
            if full or facts is None or set(facts.replicas) != set(self.config.replica_regions):
                self._set_replicas(name, set(self.config.replica_regions))
            current_tags = dict(facts.tags) if facts is not None else self._tags(name)
            self._set_tags(name, {**desired_tags(request.stack, state, record, self.config.replica_regions),
                                  **self._mark(state, verified)}, current_tags)
        elif mark := self._mark(state, verified):
            self.api.call("TagResource", name=name, SecretId=name, Tags=tag_list(mark))  # the change's last write
        return written

    def _mark(self, state: SecretState, verified: float) -> dict[str, str]:
        """With ``access_drift: changed``, the tag that says when cloudsync last wrote (see remote.SYNCED_TAG)."""
        if self.config.access_drift != "changed":
            return {}
        written = self.api.server_now()
        return {SYNCED_TAG: sync_mark(written, granted=bool(state.readers),
                                      verified=None if int(verified) >= int(written) else verified)}

    def _verified(self, name: str, before: RemoteSecret | None) -> float:
        """Since when the policy is known to hold no grant cloudsync did not make, for a change
        that did not rewrite it: when this apply's plan read it without readers, else the old
        mark's, else never (0: the feed checks all it holds)."""
        policy = self.reader.last_policies.get(name, "")
        if name in self.reader.read_at and policy != "" and not parse_policy(policy).readers:
            return self.reader.read_at[name]
        facts = facts_of(before, AwsFacts)
        mark = parse_mark({"Tags": tag_list(dict(facts.tags))}) if facts is not None else None
        return float(mark.verified) if mark is not None and not mark.granted else 0.0

    def _update_secret(self, name: str, state: SecretState, before: RemoteSecret | None, *,
                       writing_value: bool) -> None:
        params: dict[str, Any] = {}
        current = before.description if before is not None else None
        if (current or None) != (state.description or None):
            params["Description"] = state.description or ""
        kms = self.config.kms_key_id
        facts = facts_of(before, AwsFacts)
        if kms and writing_value and not _same_kms_key(facts.kms_key_id if facts else None, kms):
            params["KmsKeyId"] = kms  # new versions are encrypted under the target's key
        if params:
            self.api.call("UpdateSecret", name=name, SecretId=name, **params)

    def _put_value(self, request: StateRequest, value: SecretValue) -> str:
        # The engine's token derives from the value's fingerprint: a rerun after a kill finds the
        # version it already wrote (AWS answers with that version instead of adding another).
        token = request_token(request, "value")
        response = self.api.call("PutSecretValue", name=request.name, carries_value=True, SecretId=request.name,
                                 ClientRequestToken=token, VersionStages=[CURRENT, STAGE], **value_payload(value))
        stages = response.get("VersionStages")
        if stages is not None and CURRENT not in stages:
            # That version exists but another one was made current since: write it anew.
            token = str(uuid.uuid4())
            response = self.api.call("PutSecretValue", name=request.name, carries_value=True,
                                     SecretId=request.name, ClientRequestToken=token,
                                     VersionStages=[CURRENT, STAGE], **value_payload(value))
        return str(response.get("VersionId") or token)

    def _set_readers(self, name: str, readers: frozenset[str], *, read_current: bool) -> float:
        """Make the readers the declared ones; return AWS's time from which the policy is cloudsync's
        (a put replaces the whole policy: a grant made before it is gone, its event explained)."""
        current: str | None = None
        read_at = self.api.server_now()
        if read_current:
            response = self.api.call("GetResourcePolicy", name=name, idempotent=True, SecretId=name)
            current = response.get("ResourcePolicy") or None
        wanted = render_policy(readers, parse_policy(current).kept)
        if wanted is None:
            if current is not None:
                self.api.call("DeleteResourcePolicy", name=name, SecretId=name)
            return read_at
        if current is not None and _normalised(current) == _normalised(wanted):
            return read_at
        self.api.call("PutResourcePolicy", name=name, SecretId=name, ResourcePolicy=wanted, BlockPublicPolicy=True)
        return self.api.server_now()  # the put's own Date: its CloudTrail event is no later (EVENT_SLACK)

    def _set_replicas(self, name: str, wanted: set[str]) -> None:
        found = self.reader.describe(name)
        actual = {str(r["Region"]) for r in (found or {}).get("ReplicationStatus") or []}
        if wanted - actual:
            self.api.call("ReplicateSecretToRegions", name=name, SecretId=name,
                          AddReplicaRegions=[{"Region": r} for r in sorted(wanted - actual)])
        if actual - wanted:
            self.api.call("RemoveRegionsFromReplication", name=name, SecretId=name,
                          RemoveReplicaRegions=sorted(actual - wanted))

    def _set_tags(self, name: str, wanted: dict[str, str], current: dict[str, str]) -> None:
        # Add before removing, so the ownership tags are never missing in between.
        changed = {k: v for k, v in wanted.items() if current.get(k) != v}
        stale = sorted(k for k in current if k not in wanted and not k.startswith(SYSTEM_TAG_PREFIX))
        if changed:
            self.api.call("TagResource", name=name, SecretId=name, Tags=tag_list(changed))
        if stale:
            self.api.call("UntagResource", name=name, SecretId=name, TagKeys=stale)

    def _tags(self, name: str) -> dict[str, str]:
        found = self.reader.describe(name)
        facts = facts_of(self._remote(found), AwsFacts) if found else None
        return dict(facts.tags) if facts is not None else {}

    def _remote(self, entry: dict[str, Any]) -> RemoteSecret:
        return to_remote(entry, region=self.config.region, replica_regions=self.config.replica_regions)


def _stamped(request: S) -> S:
    """Fix the write time of a value now: the tags written with CreateSecret must match the record returned."""
    if request.value is None:
        return request
    base = request.record or ValueRecord()
    return replace(request, record=replace(base, written_at=base.written_at or now()))


def _normalised(policy: str) -> str:
    try:
        return json.dumps(json.loads(policy), sort_keys=True)
    except ValueError:
        return policy

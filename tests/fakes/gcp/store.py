"""The state and rules of the fake Secret Manager: secrets, versions, IAM policies.

Every method takes and returns the protobuf messages that ship with
``google-cloud-secret-manager`` (``Secret.pb()`` and friends) and raises :class:`FakeError`
with the status the public API reference gives. One lock serialises all operations: the
fake is about behaviour, not throughput.

Modelled on the API reference: resource names (project numbers in responses, regional
``locations/*`` parents), newest-first lists with opaque page tokens, label / annotation /
alias validation, quoted etags that change on every update and are checked on update,
delete and version state changes (mismatch -> FAILED_PRECONDITION), the ``latest`` alias
(the most recently created version, whatever its state), version states, payload CRC32C,
``expire_time``/``ttl`` (an expired secret is deleted), and IAM policies with their own
etag (a stale one -> ABORTED, as IAM answers concurrent read-modify-write races).

IAM policies are kept the way IAM normalises them: bindings of one role and condition are
merged, members deduplicated and sorted, bindings sorted by role (then condition), so a
client that compares what it sent with what it reads back in order sees a difference.
``GetIamPolicy`` honours ``options.requested_policy_version`` (0, 1 or 3; a policy with
conditional bindings must be asked for as version 3; the answer's version is the lowest
that can express it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud import secretmanager
from google.iam.v1 import policy_pb2
from google.protobuf import field_mask_pb2, timestamp_pb2

from tests.fakes.gcp import rules
from tests.fakes.gcp.assets import Entry, Index
from tests.fakes.gcp.errors import FakeError
from tests.fakes.gcp.filters import matches_secret, matches_version, parse_filter
from tests.fakes.gcp.names import SECRET_ID_RE, Parent, parse_parent, parse_secret, parse_version

SecretPb: Any = secretmanager.Secret.pb()
VersionPb: Any = secretmanager.SecretVersion.pb()
PayloadPb: Any = secretmanager.SecretPayload.pb()
State = secretmanager.SecretVersion.State

MAX_PAGE = 25_000
EMPTY_POLICY_ETAG = b"\x00\x20\x01"  # "ACAB" in JSON: the etag of a never-set policy
_UPDATABLE = {"labels", "annotations", "expire_time", "ttl", "topics", "rotation", "version_aliases",
              "version_destroy_ttl", "customer_managed_encryption"}


@dataclass
class _Version:
    pb: Any  # SecretVersion
    data: bytes | None


@dataclass
class _Secret:
    pb: Any  # Secret
    seq: int
    versions: dict[int, _Version] = field(default_factory=dict)
    policy: Any = None  # policy_pb2.Policy

    @property
    def next_number(self) -> int:
        return max(self.versions, default=0) + 1


def _stamp(nanos: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(nanos)
    return ts


class Store:
    """All secrets of all projects the fake serves."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._secrets: dict[str, _Secret] = {}
        self._expiring: dict[str, int] = {}  # name -> expire_time in ns, so sweeps stay cheap
        self._seq = 0
        self._tick = 0
        # Whether AddSecretVersion changes the secret's etag. The reference does not say;
        # clients must work either way, so tests can flip it.
        self.secret_etag_changes_on_add = False
        self.index = Index(clock)  # Cloud Asset Inventory's lagging view of this store (assets.py)

    # -- helpers ----------------------------------------------------------------------

    def _now_ns(self) -> int:
        return int(self._clock() * 1e9)

    def _etag(self) -> str:
        self._tick = max(self._tick + 1, self._now_ns() // 1000)
        return f'"{self._tick:x}"'

    def _sweep(self) -> None:
        """Expired secrets are deleted, as on GCP."""
        now = self._now_ns()
        for name in [n for n, when in self._expiring.items() if when <= now]:
            self._forget(name)

    def _indexed(self, secret: _Secret) -> None:
        """Tell the asset index what ``secret`` now looks like."""
        versions = {n: (State(v.pb.state).name, self._copy(v.pb.create_time)) for n, v in secret.versions.items()}
        self.index.record(secret.pb.name, Entry(self._copy(secret.policy), versions))

    def _store(self, secret: _Secret) -> None:
        self._indexed(secret)
        self._secrets[secret.pb.name] = secret
        if secret.pb.HasField("expire_time"):
            self._expiring[secret.pb.name] = secret.pb.expire_time.ToNanoseconds()
        else:
            self._expiring.pop(secret.pb.name, None)

    def _forget(self, name: str) -> None:
        if self._secrets.pop(name, None) is not None:
            self.index.record(name, None)
        self._expiring.pop(name, None)

    def _secret(self, name: str) -> _Secret:
        _, canonical = parse_secret(name)
        self._sweep()
        found = self._secrets.get(canonical)
        if found is None:
            raise FakeError(grpc.StatusCode.NOT_FOUND, f"Secret [{canonical}] not found.")
        return found

    @staticmethod
    def _check_etag(given: str, current: str) -> None:
        if given and given != current:
            raise FakeError(grpc.StatusCode.FAILED_PRECONDITION,
                            f"The etag provided in the request ({given}) does not match the current etag")

    def _set_expiration(self, target: Any, source: Any, which: str | None) -> None:
        if which == "expire_time":
            if source.expire_time.ToNanoseconds() <= self._now_ns():
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "expire_time must be in the future")
            target.expire_time.CopyFrom(source.expire_time)
        elif which == "ttl":
            nanos = source.ttl.ToNanoseconds()
            if nanos <= 0:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "ttl must be positive")
            target.expire_time.CopyFrom(_stamp(self._now_ns() + nanos))
        else:
            target.ClearField("expire_time")

    def _usable_versions(self, secret: _Secret) -> list[int]:
        return [n for n, v in secret.versions.items() if v.pb.state != State.DESTROYED]

    # -- secrets ----------------------------------------------------------------------

    def create_secret(self, parent: str, secret_id: str, secret: Any) -> Any:
        with self._lock:
            where = parse_parent(parent)
            if not SECRET_ID_RE.match(secret_id):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Invalid secret id {secret_id!r}: use [a-zA-Z0-9_-], at most 255 characters")
            name = where.secret(secret_id)
            self._sweep()
            if name in self._secrets:
                raise FakeError(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            self._check_replication(where, secret)
            rules.check_labels(secret.labels)
            rules.check_annotations(secret.annotations)
            if secret.version_aliases:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "a new secret has no versions to alias")
            if secret.HasField("rotation") and not secret.topics:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "rotation requires at least one topic")
            stored = SecretPb()
            stored.CopyFrom(secret)
            stored.ClearField("tags")  # input only
            stored.ClearField("policy_member")
            self._set_expiration(stored, secret, secret.WhichOneof("expiration"))
            stored.name = name
            stored.create_time.CopyFrom(_stamp(self._now_ns()))
            stored.etag = self._etag()
            self._seq += 1
            policy = policy_pb2.Policy(version=1, etag=EMPTY_POLICY_ETAG)
            self._store(_Secret(pb=stored, seq=self._seq, policy=policy))
            return self._copy(stored)

    @staticmethod
    def _check_replication(where: Parent, secret: Any) -> None:
        kind = secret.replication.WhichOneof("replication") if secret.HasField("replication") else None
        if where.location:
            if kind is not None:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                "regional secrets do not take a replication policy")
            return
        if kind is None:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "replication policy is required")
        if kind == "user_managed":
            locations = [r.location for r in secret.replication.user_managed.replicas]
            if not locations or any(not loc for loc in locations) or len(set(locations)) != len(locations):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                "user-managed replication needs one or more distinct replica locations")

    @staticmethod
    def _copy(message: Any) -> Any:
        out = type(message)()
        out.CopyFrom(message)
        return out

    def get_secret(self, name: str) -> Any:
        with self._lock:
            return self._copy(self._secret(name).pb)

    def list_secrets(self, parent: str, page_size: int, page_token: str, filter_text: str, *,
                     cap: int = MAX_PAGE) -> Any:
        with self._lock:
            where = parse_parent(parent)
            self._sweep()
            terms = parse_filter(filter_text)
            prefix = where.name + "/secrets/"
            found = sorted((s for n, s in self._secrets.items() if n.startswith(prefix) and "/" not in n[len(prefix):]),
                           key=lambda s: -s.seq)
            found = [s for s in found if matches_secret(terms, s.pb)]
            page, token = _page(found, page_size, page_token, f"{where.name}\n{filter_text}", cap)
            response = secretmanager.ListSecretsResponse.pb()(next_page_token=token,
                                                                total_size=0 if filter_text else len(found))
            response.secrets.extend(s.pb for s in page)
            return response

    def update_secret(self, secret: Any, mask: field_mask_pb2.FieldMask) -> Any:
        with self._lock:
            current = self._secret(secret.name)
            paths = list(mask.paths)
            if not paths:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "update_mask is required")
            bad = [p for p in paths if p not in _UPDATABLE]
            if bad:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"field {bad[0]!r} cannot be updated")
            self._check_etag(secret.etag, current.pb.etag)
            updated = self._copy(current.pb)
            for path in paths:
                if path == "labels":
                    rules.check_labels(secret.labels)
                elif path == "annotations":
                    rules.check_annotations(secret.annotations)
                elif path == "version_aliases":
                    rules.check_aliases(secret.version_aliases, self._usable_versions(current))
                if path in ("expire_time", "ttl"):
                    self._set_expiration(updated, secret, path if secret.HasField(path) else None)
                elif path in ("labels", "annotations", "version_aliases", "topics"):
                    updated.ClearField(path)
                    getattr(updated, path).MergeFrom(getattr(secret, path))
                else:
                    updated.ClearField(path)
                    if secret.HasField(path):
                        getattr(updated, path).CopyFrom(getattr(secret, path))
            updated.etag = self._etag()
            current.pb = updated
            self._store(current)
            return self._copy(updated)

    def delete_secret(self, name: str, etag: str) -> None:
        with self._lock:
            current = self._secret(name)
            self._check_etag(etag, current.pb.etag)
            self._forget(current.pb.name)

    # -- versions ---------------------------------------------------------------------

    def add_secret_version(self, parent: str, payload: Any) -> Any:
        with self._lock:
            secret = self._secret(parent)
            rules.check_payload_size(payload.data)
            if payload.HasField("data_crc32c") and payload.data_crc32c != rules.crc32c(payload.data):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "Checksum mismatch: the payload does not match"
                                " data_crc32c")
            number = secret.next_number
            version = VersionPb(name=f"{secret.pb.name}/versions/{number}", state=State.ENABLED,
                                etag=self._etag(), client_specified_payload_checksum=payload.HasField("data_crc32c"))
            version.create_time.CopyFrom(_stamp(self._now_ns()))
            if secret.pb.replication.WhichOneof("replication") == "user_managed":
                status = version.replication_status.user_managed.replicas
                for replica in secret.pb.replication.user_managed.replicas:
                    status.add(location=replica.location)
            elif secret.pb.HasField("replication"):
                version.replication_status.automatic.SetInParent()
            secret.versions[number] = _Version(pb=version, data=bytes(payload.data))
            self._indexed(secret)
            if self.secret_etag_changes_on_add:
                secret.pb.etag = self._etag()
            return self._copy(version)

    def _version(self, name: str, *, aliases: bool = True) -> tuple[_Secret, _Version]:
        secret_name, part = parse_version(name)
        secret = self._secret(secret_name)
        if part == "latest":
            if not secret.versions:
                raise FakeError(grpc.StatusCode.NOT_FOUND, f"Secret [{secret.pb.name}] not found or has no versions.")
            number = max(secret.versions)
        elif part.isdigit():
            number = int(part)
        elif aliases and part in secret.pb.version_aliases:
            number = secret.pb.version_aliases[part]
        else:
            raise FakeError(grpc.StatusCode.NOT_FOUND if aliases else grpc.StatusCode.INVALID_ARGUMENT,
                            f"Secret Version [{secret.pb.name}/versions/{part}] not found.")
        found = secret.versions.get(number)
        if found is None:
            raise FakeError(grpc.StatusCode.NOT_FOUND, f"Secret Version [{secret.pb.name}/versions/{number}] not found.")
        return secret, found

    def get_secret_version(self, name: str) -> Any:
        with self._lock:
            return self._copy(self._version(name)[1].pb)

    def access_secret_version(self, name: str) -> Any:
        with self._lock:
            _, version = self._version(name)
            if version.pb.state != State.ENABLED:
                state = State(version.pb.state).name
                raise FakeError(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Secret Version [{version.pb.name}] is in {state} state.")
            data = version.data or b""
            response = secretmanager.AccessSecretVersionResponse.pb()(name=version.pb.name)
            response.payload.data = data
            response.payload.data_crc32c = rules.crc32c(data)
            return response

    def list_secret_versions(self, parent: str, page_size: int, page_token: str, filter_text: str, *,
                             cap: int = MAX_PAGE) -> Any:
        with self._lock:
            secret = self._secret(parent)
            terms = parse_filter(filter_text)
            found = [v for _, v in sorted(secret.versions.items(), reverse=True) if matches_version(terms, v.pb)]
            page, token = _page(found, page_size, page_token, f"{secret.pb.name}\n{filter_text}", cap)
            response = secretmanager.ListSecretVersionsResponse.pb()(next_page_token=token,
                                                                       total_size=0 if filter_text else len(found))
            response.versions.extend(v.pb for v in page)
            return response

    def change_version_state(self, name: str, etag: str, target: int) -> Any:
        """Enable, disable or destroy one version (by number), checking its etag."""
        with self._lock:
            secret, version = self._version(name, aliases=False)
            self._check_etag(etag, version.pb.etag)
            if version.pb.state == State.DESTROYED:
                raise FakeError(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Secret Version [{version.pb.name}] is in DESTROYED state.")
            version.pb.state = target
            if target == State.DESTROYED:
                version.data = None
                version.pb.destroy_time.CopyFrom(_stamp(self._now_ns()))
                number = int(version.pb.name.rsplit("/", 1)[1])
                for alias in [a for a, n in secret.pb.version_aliases.items() if n == number]:
                    del secret.pb.version_aliases[alias]
            version.pb.etag = self._etag()
            self._indexed(secret)
            return self._copy(version.pb)

    # -- IAM --------------------------------------------------------------------------

    def get_iam_policy(self, resource: str, requested_version: int = 0) -> Any:
        with self._lock:
            if requested_version not in (0, 1, 3):
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                f"Invalid requested policy version {requested_version}: use 0, 1 or 3.")
            policy = self._copy(self._secret(resource).policy)
            if policy.version >= 3 and requested_version < 3:
                raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                "The policy has conditional role bindings: request policy version 3 to read it.")
            return policy

    def set_iam_policy(self, resource: str, policy: Any) -> Any:
        with self._lock:
            secret = self._secret(resource)
            if policy.etag and policy.etag != secret.policy.etag:
                raise FakeError(grpc.StatusCode.ABORTED, "There were concurrent policy changes. Please retry the "
                                "whole read-modify-write with exponential backoff.")
            for binding in policy.bindings:
                rules.check_role(binding.role)
                for member in binding.members:
                    rules.check_member(member)
                if binding.HasField("condition") and policy.version < 3:
                    raise FakeError(grpc.StatusCode.INVALID_ARGUMENT,
                                    "conditional role bindings require policy version 3")
            stored = _normalised(policy)
            stored.etag = os.urandom(8)
            secret.policy = stored
            self._indexed(secret)
            return self._copy(stored)

    def test_iam_permissions(self, resource: str, permissions: list[str]) -> list[str]:
        with self._lock:
            self._secret(resource)
            return [p for p in permissions if p.startswith("secretmanager.")]

    # -- for tests --------------------------------------------------------------------

    def secret_names(self) -> list[str]:
        with self._lock:
            self._sweep()
            return sorted(self._secrets)

    def payloads(self) -> list[bytes]:
        """Every stored payload (lets leak tests prove where a value does live)."""
        with self._lock:
            return [v.data for s in self._secrets.values() for v in s.versions.values() if v.data is not None]


def _normalised(policy: Any) -> Any:
    """The policy as IAM stores it: one binding per (role, condition), members sorted, bindings sorted,
    empty bindings dropped, and the lowest version that expresses it (3 only with conditions)."""
    merged: dict[tuple[str, bytes], tuple[Any, set[str]]] = {}
    for binding in policy.bindings:
        condition = binding.condition.SerializeToString(deterministic=True) if binding.HasField("condition") else b""
        _, members = merged.setdefault((binding.role, condition), (binding, set()))
        members.update(binding.members)
    conditional = any(condition for _, condition in merged)
    stored = policy_pb2.Policy(version=3 if conditional else 1)
    for key in sorted(merged):
        first, members = merged[key]
        if not members:
            continue
        binding = stored.bindings.add(role=first.role, members=sorted(members))
        if first.HasField("condition"):
            binding.condition.CopyFrom(first.condition)
    return stored


def _page(items: list[Any], page_size: int, token: str, scope: str, cap: int = MAX_PAGE) -> tuple[list[Any], str]:
    """One page of ``items`` (at most ``cap``, the server's own limit) and the token of the next
    (opaque, bound to the query)."""
    if page_size < 0:
        raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
    size = min(page_size or MAX_PAGE, MAX_PAGE, max(1, cap))
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    offset = 0
    if token:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset, bound = int(data["o"]), data["q"]
        except (ValueError, KeyError, TypeError):
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "Invalid page token") from None
        if bound != digest or offset < 0:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, "The page token does not belong to this request")
    page = items[offset:offset + size]
    more = offset + size < len(items)
    next_token = base64.urlsafe_b64encode(json.dumps({"o": offset + size, "q": digest}).encode()).decode() if more else ""
    return page, next_token

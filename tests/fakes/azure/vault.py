"""The in-memory Key Vault behind the fake: secrets, versions, soft delete, recover, purge.

Behaviour follows the Key Vault secrets REST reference and the quirks listed in
docs/providers/azure.md ("Testing against the HTTPS fake"):

- a secret is its versions; tags, content type and attributes belong to a version, and the
  list of secrets shows the *current* (newest) version's tags and attributes under the
  secret's base id (no version in it);
- names are case-insensitive and keep the casing they were created with;
- deleting moves the secret to ``/deletedsecrets``; the deletion completes only after
  ``pending_polls`` reads of the deleted secret (Key Vault completes it asynchronously, and
  clients poll), likewise for recovery; a write to a soft-deleted name is
  ``409 Conflict`` with inner error ``ObjectIsDeletedButRecoverable``;
- purge is refused (403) when the vault has purge protection, and (409) while the
  deletion is still in progress;
- at most 15 tags per version, values up to 25 KiB, a content type up to 255 characters;
- a certificate's secret (``add_certificate``: Key Vault creates one per certificate, with
  its key and certificate) lists with ``"managed": true`` and a ``kid``; the secrets API
  refuses to write, update or delete it.

Modelled but unverified against Azure (named so tests and docs can say so): ``"exp": null``
in an update is ignored (Azure documents no way to remove an expiry from a version);
writes during a pending delete or recovery answer 409 with ``ObjectIsBeingDeleted`` /
``ObjectIsBeingRecovered``; the status, code and wording of the answers to a content type
over 255 characters (400 ``BadParameter``) and to a write to a certificate's secret (403
``Forbidden``).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")
MAX_TAGS = 15
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE = 255


class ApiError(Exception):
    """An HTTP error answer: status and the service's error body."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def not_found(name: str) -> ApiError:
    return ApiError(404, "SecretNotFound",
                    f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted "
                    "this secret you may be able to recover it using the correct recovery command.")


@dataclass
class Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int
    kid: str | None = None  # the key of the certificate this version belongs to (managed secrets)


@dataclass
class Secret:
    name: str  # casing as created
    versions: list[Version] = field(default_factory=list)  # oldest first; the last one is current
    deleted_date: int | None = None
    scheduled_purge_date: int | None = None
    pending_polls: int = 0  # reads left before a delete/recover completes ...
    pending_until: float = 0.0  # ... or this moment (time.monotonic()), whichever comes first

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def managed(self) -> bool:
        """Key Vault manages it: the secret of a certificate."""
        return self.current.kid is not None


class Vault:
    """One vault's secrets. Every method takes the vault's lock; the fake's handler threads share it."""

    def __init__(self, base_url: str, *, pending_polls: int = 1, pending_seconds: float = 2.0,
                 purge_protection: bool = False, recoverable_days: int = 90) -> None:
        self.base_url = base_url
        self.pending_polls = pending_polls
        self.pending_seconds = pending_seconds
        self.purge_protection = purge_protection
        self.recoverable_days = recoverable_days
        self.clock_offset = 0  # seconds added to the wall clock, so tests move time instead of sleeping
        self.lock = threading.RLock()
        self.live: dict[str, Secret] = {}  # casefolded name -> secret
        self.deleting: dict[str, Secret] = {}  # deleted, deletion not yet complete
        self.deleted: dict[str, Secret] = {}  # in /deletedsecrets
        self.recovering: dict[str, Secret] = {}  # recovered, recovery not yet complete
        self._order: dict[int, list[str]] = {}  # sorted keys per group, dropped on every change

    def now(self) -> int:
        """Key Vault's timestamps: unix seconds."""
        return int(time.time()) + self.clock_offset

    # -- shapes on the wire ---------------------------------------------------------

    @property
    def recovery_level(self) -> str:
        return "Recoverable" if self.purge_protection else "Recoverable+Purgeable"

    def _attributes(self, version: Version) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": version.enabled, "created": version.created, "updated": version.updated,
                                 "recoveryLevel": self.recovery_level, "recoverableDays": self.recoverable_days}
        if version.nbf is not None:
            attrs["nbf"] = version.nbf
        if version.exp is not None:
            attrs["exp"] = version.exp
        return attrs

    def _item(self, secret: Secret, version: Version, *, versioned: bool) -> dict[str, Any]:
        base = f"{self.base_url}/secrets/{secret.name}"
        item: dict[str, Any] = {"id": f"{base}/{version.id}" if versioned else base,
                                "attributes": self._attributes(version)}
        if version.tags:
            item["tags"] = dict(version.tags)
        if version.content_type is not None:
            item["contentType"] = version.content_type
        if secret.managed:
            item["managed"] = True
        return item

    def _bundle(self, secret: Secret, version: Version, *, with_value: bool) -> dict[str, Any]:
        bundle = self._item(secret, version, versioned=True)
        if version.kid is not None:
            bundle["kid"] = version.kid
        if with_value:
            bundle["value"] = version.value
        return bundle

    def _deleted(self, secret: Secret, *, bundle: bool) -> dict[str, Any]:
        body = (self._bundle(secret, secret.current, with_value=False) if bundle
                else self._item(secret, secret.current, versioned=False))
        body["recoveryId"] = f"{self.base_url}/deletedsecrets/{secret.name}"
        body["deletedDate"] = secret.deleted_date
        body["scheduledPurgeDate"] = secret.scheduled_purge_date
        return body

    # -- validation -------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME_RE.match(name):
            raise ApiError(400, "BadParameter",
                           "The request URI contains an invalid name: " + name[:130])

    @staticmethod
    def _check_tags(tags: Any) -> dict[str, str] | None:
        if tags is None:
            return None
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ApiError(400, "BadParameter", "Tags must be a map of strings.")
        if len(tags) > MAX_TAGS:
            raise ApiError(400, "BadParameter", f"The number of tags ({len(tags)}) exceeds the maximum of {MAX_TAGS}.")
        if any(len(k) > 512 or len(v) > 256 for k, v in tags.items()):
            raise ApiError(400, "BadParameter", "A tag name is limited to 512 characters, a value to 256.")
        return dict(tags)

    @staticmethod
    def _check_content_type(content_type: Any) -> str | None:
        if content_type is None:
            return None
        if not isinstance(content_type, str):
            raise ApiError(400, "BadParameter", "Property 'contentType' must be a string.")
        if len(content_type) > MAX_CONTENT_TYPE:
            raise ApiError(400, "BadParameter",
                           f"The content type exceeds the maximum length of {MAX_CONTENT_TYPE} characters.")
        return content_type

    @staticmethod
    def _guard_unmanaged(secret: Secret | None, operation: str) -> None:
        if secret is not None and secret.managed:
            raise ApiError(403, "Forbidden",
                           f"Operation {operation} is not allowed on secret {secret.name}: it is managed by the "
                           "certificate of the same name. Use the certificates API.")

    def _guard_write(self, key: str, name: str) -> None:
        if key in self.deleted:
            raise ApiError(409, "Conflict",
                           f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
                           "reused; in this state, the secret can only be recovered or purged.",
                           inner="ObjectIsDeletedButRecoverable")
        if key in self.deleting:
            raise ApiError(409, "Conflict", f"Secret {name} is currently being deleted.", inner="ObjectIsBeingDeleted")
        if key in self.recovering:
            raise ApiError(409, "Conflict", f"Secret {name} is currently being recovered.",
                           inner="ObjectIsBeingRecovered")

    def _live(self, name: str) -> Secret:
        secret = self.live.get(name.casefold())
        if secret is None:
            raise not_found(name)
        return secret

    def _sorted(self, group: dict[str, Secret]) -> list[str]:
        """The group's keys in list order, cached so listing N secrets stays O(N), not O(N²)."""
        keys = self._order.get(id(group))
        if keys is None:
            keys = self._order[id(group)] = sorted(group)
        return keys

    def _changed(self) -> None:
        self._order.clear()

    def _start_pending(self, secret: Secret) -> None:
        secret.pending_polls = self.pending_polls
        secret.pending_until = time.monotonic() + self.pending_seconds

    def _advance(self, pending: dict[str, Secret], done: dict[str, Secret], key: str) -> None:
        """One poll of a pending delete / recover: it completes after ``pending_polls`` polls or
        ``pending_seconds``, so clients must poll (as against Azure) yet nothing hangs when they don't."""
        secret = pending.get(key)
        if secret is None:
            return
        if secret.pending_polls > 0 and time.monotonic() < secret.pending_until:
            secret.pending_polls -= 1
            return
        del pending[key]
        done[key] = secret
        self._changed()

    def _settle(self) -> None:
        """Complete every pending operation whose time is up (before listing)."""
        for pending, done in ((self.deleting, self.deleted), (self.recovering, self.live)):
            for key in [k for k, s in pending.items() if time.monotonic() >= s.pending_until]:
                done[key] = pending.pop(key)
                self._changed()

    # -- operations ---------------------------------------------------------------------

    def set_secret(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_name(name)
        value = body.get("value")
        if not isinstance(value, str):
            raise ApiError(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            raise ApiError(400, "BadParameter", "The secret value exceeds the maximum size of 25 KB.")
        tags = self._check_tags(body.get("tags"))
        content_type = self._check_content_type(body.get("contentType"))
        attrs = body.get("attributes") or {}
        with self.lock:
            key = name.casefold()
            self._settle()
            self._guard_write(key, name)
            self._guard_unmanaged(self.live.get(key), "set")
            stamp = self.now()
            version = Version(id=secrets.token_hex(16), value=value, content_type=content_type, tags=tags,
                              enabled=attrs.get("enabled", True) is not False, nbf=attrs.get("nbf"),
                              exp=attrs.get("exp"), created=stamp, updated=stamp)
            if key not in self.live:
                self.live[key] = Secret(name=name)
                self._changed()
            secret = self.live[key]
            secret.versions.append(version)
            return self._bundle(secret, version, with_value=True)

    def get_secret(self, name: str, version_id: str) -> dict[str, Any]:
        with self.lock:
            key = name.casefold()
            self._advance(self.recovering, self.live, key)
            secret = self._live(name)
            version = self._version(secret, version_id)
            if not version.enabled:
                raise ApiError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                               inner="SecretDisabled")
            return self._bundle(secret, version, with_value=True)

    def _version(self, secret: Secret, version_id: str) -> Version:
        if not version_id:
            return secret.current
        for version in secret.versions:
            if version.id == version_id:
                return version
        raise ApiError(404, "SecretNotFound",
                       f"A secret with (name/id) {secret.name}/{version_id} was not found in this key vault.")

    def update_secret(self, name: str, version_id: str, body: dict[str, Any]) -> dict[str, Any]:
        tags = self._check_tags(body.get("tags"))
        content_type = self._check_content_type(body.get("contentType"))
        with self.lock:
            key = name.casefold()
            self._guard_write(key, name)
            secret = self._live(name)
            self._guard_unmanaged(secret, "update")
            version = self._version(secret, version_id)
            if "tags" in body:
                version.tags = tags  # a PATCH replaces the whole tag set
            if content_type is not None:
                version.content_type = content_type
            attrs = body.get("attributes") or {}
            if attrs.get("enabled") is not None:
                version.enabled = bool(attrs["enabled"])
            for field_name in ("nbf", "exp"):
                if attrs.get(field_name) is not None:  # null is ignored (see module docstring)
                    setattr(version, field_name, int(attrs[field_name]))
            version.updated = self.now()
            return self._bundle(secret, version, with_value=False)

    def list_secrets(self, start: int = 0, size: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of the secret list (by casefolded name) and the number of secrets."""
        with self.lock:
            self._settle()
            keys = self._sorted(self.live)
            chosen = keys[start:] if size is None else keys[start:start + size]
            return [self._item(self.live[k], self.live[k].current, versioned=False) for k in chosen], len(keys)

    def list_versions(self, name: str, start: int = 0, size: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of a secret's versions (oldest first); an unknown name lists none (no 404)."""
        with self.lock:
            self._advance(self.recovering, self.live, name.casefold())
            secret = self.live.get(name.casefold())
            if secret is None:
                return [], 0
            chosen = secret.versions[start:] if size is None else secret.versions[start:start + size]
            return [self._item(secret, v, versioned=True) for v in chosen], len(secret.versions)

    def delete_secret(self, name: str) -> dict[str, Any]:
        with self.lock:
            key = name.casefold()
            secret = self._live(name)
            self._guard_unmanaged(secret, "delete")
            del self.live[key]
            self._changed()
            stamp = self.now()
            secret.deleted_date = stamp
            secret.scheduled_purge_date = stamp + self.recoverable_days * 86400
            self._start_pending(secret)
            self.deleting[key] = secret
            return self._deleted(secret, bundle=True)

    def get_deleted(self, name: str) -> dict[str, Any]:
        with self.lock:
            key = name.casefold()
            self._advance(self.deleting, self.deleted, key)
            secret = self.deleted.get(key)
            if secret is None:
                raise not_found(name)
            return self._deleted(secret, bundle=True)

    def list_deleted(self, start: int = 0, size: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of ``/deletedsecrets`` and the number of deleted secrets."""
        with self.lock:
            self._settle()
            keys = self._sorted(self.deleted)
            chosen = keys[start:] if size is None else keys[start:start + size]
            return [self._deleted(self.deleted[k], bundle=False) for k in chosen], len(keys)

    def purge(self, name: str) -> None:
        with self.lock:
            key = name.casefold()
            self._settle()
            if key in self.deleting:
                raise ApiError(409, "Conflict", f"Secret {name} is currently being deleted.",
                               inner="ObjectIsBeingDeleted")
            if key not in self.deleted:
                raise not_found(name)
            if self.purge_protection:
                raise ApiError(403, "Forbidden",
                               "Operation \"purge\" is not allowed because purge protection is enabled for this "
                               "vault. Key Vault service will automatically purge it after the retention period "
                               "has passed.", inner="PurgeProtected")
            del self.deleted[key]
            self._changed()

    def recover(self, name: str) -> dict[str, Any]:
        with self.lock:
            key = name.casefold()
            self._settle()
            if key in self.deleting:
                raise ApiError(409, "Conflict", f"Secret {name} is currently being deleted.",
                               inner="ObjectIsBeingDeleted")
            secret = self.deleted.pop(key, None)
            if secret is None:
                raise not_found(name)
            self._changed()
            secret.deleted_date = secret.scheduled_purge_date = None
            self._start_pending(secret)
            self.recovering[key] = secret
            return self._bundle(secret, secret.current, with_value=False)

    # -- direct access for tests (not part of the API) ------------------------------------

    def add_certificate(self, name: str, pem: str) -> None:
        """What creating a certificate does to the secrets: a secret of the same name, managed by
        Key Vault, holding the certificate and its key (the certificates API is not modelled)."""
        self._check_name(name)
        with self.lock:
            key = name.casefold()
            if key in self.live or key in self.deleting or key in self.deleted:
                raise ApiError(409, "Conflict", f"A secret named {name} exists already.")
            stamp = self.now()
            version_id = secrets.token_hex(16)
            version = Version(id=version_id, value=pem, content_type="application/x-pem-file", tags=None,
                              enabled=True, nbf=None, exp=stamp + 365 * 86400, created=stamp, updated=stamp,
                              kid=f"{self.base_url}/keys/{name}/{version_id}")
            self.live[key] = Secret(name=name, versions=[version])
            self._changed()

    def reset(self) -> None:
        with self.lock:
            self.live.clear()
            self.deleting.clear()
            self.deleted.clear()
            self.recovering.clear()
            self.clock_offset = 0
            self._changed()

    def settle_all(self) -> None:
        """Complete every pending delete and recovery now (for tests that act without polling)."""
        with self.lock:
            for pending, done in ((self.deleting, self.deleted), (self.recovering, self.live)):
                done.update(pending)
                pending.clear()
            self._changed()

    def snapshot(self, name: str) -> Secret | None:
        """The live secret (any casing), for assertions."""
        with self.lock:
            return self.live.get(name.casefold())

    def all_values(self) -> list[str]:
        """Every value held anywhere in the vault (leak checks compare outputs against these)."""
        with self.lock:
            return [v.value for group in (self.live, self.deleting, self.deleted, self.recovering)
                    for s in group.values() for v in s.versions]

"""Who can read a secret's value, in terms every cloud shares.

A principal can read a secret through a grant on the secret itself or through a grant at a
broader scope (an AWS identity policy or a resource policy to an account, a GCP project or
folder binding, an Azure role assignment on the vault's resource group, ...). Each provider
evaluates its own cloud's grants and reports them as :class:`EffectiveReader` entries in an
:class:`AccessScan`; matching the principals against the stack's declared ones (name,
``declared``) is the core's job, not the provider's.

A scan that could not read every source says so (:attr:`AccessScan.complete` is false, with
the reasons): the readers it lists are then a lower bound, to be shown as "unknown", never
as "none".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Via(StrEnum):
    """The scope a read grant is bound at (or, on AWS, the kind of principal a resource policy names)."""

    SECRET = "secret"  # noqa: S105 - a scope name, not a password
    VAULT = "vault"
    RESOURCE_GROUP = "resource-group"
    SUBSCRIPTION = "subscription"
    MANAGEMENT_GROUP = "management-group"
    PROJECT = "project"
    FOLDER = "folder"
    ORGANIZATION = "organization"
    ACCOUNT = "account"
    ACCESS_POLICY = "access-policy"


@dataclass(frozen=True, order=True)
class EffectiveReader:
    """One principal that can read a secret's value, and the one grant that lets it.

    A principal holding several grants appears once per grant: each is a separate thing to
    review or remove.
    """

    principal: str  # the cloud's id: an IAM ARN, ``*``, a GCP member, an Azure object id
    via: Via
    scope: str  # where the grant is bound (the secret, the account, the project, the vault, ...)
    grant: str  # the role or policy and the statement that grants the read
    conditional: bool = False  # a condition decides at request time whether the grant applies


@dataclass(frozen=True)
class AccessScan:
    """What one target's access scan produced, per remote secret name.

    ``reasons`` say why the target as a whole was not fully read (IAM access denied, the
    scan opted out, ...); ``secret_reasons`` why one secret was not (its resource policy could
    not be read, ...). A name missing from ``readers`` was not scanned at all.
    """

    readers: Mapping[str, tuple[EffectiveReader, ...]]
    last_accessed: Mapping[str, date | None] = field(default_factory=dict)  # where the cloud records it
    reasons: tuple[str, ...] = ()
    secret_reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether every source of every scanned secret was read."""
        return not self.reasons and not any(self.secret_reasons.values())

    def readers_of(self, name: str) -> tuple[EffectiveReader, ...]:
        return self.readers.get(name, ())

    def reasons_for(self, name: str) -> tuple[str, ...]:
        """Why the readers of ``name`` may be incomplete (empty when they are complete)."""
        if name not in self.readers:
            return (*self.reasons, "not scanned")
        return (*self.reasons, *self.secret_reasons.get(name, ()))

    def complete_for(self, name: str) -> bool:
        return not self.reasons_for(name)

    @classmethod
    def skipped(cls, names: Iterable[str], reason: str) -> AccessScan:
        """The scan of a target that was not scanned (opted out, no permission): every secret unknown."""
        return cls(readers={name: () for name in names}, reasons=(reason,))

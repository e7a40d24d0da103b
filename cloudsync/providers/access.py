"""Who can read a secret's value, as a target's access scan found it (cloud-neutral)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class Via(StrEnum):
    """The scope a read grant comes from."""

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


@dataclass(frozen=True)
class EffectiveReader:
    """One principal that can read a secret's value, and the grant that lets it."""

    principal: str
    via: Via
    scope: str
    grant: str
    conditional: bool = False


@dataclass(frozen=True)
class AccessScan:
    """What one target's scan found: readers per remote name, and whether it saw everything."""

    readers: Mapping[str, tuple[EffectiveReader, ...]] = field(default_factory=dict)
    complete: bool = True
    incomplete_reasons: tuple[str, ...] = ()
    last_accessed: Mapping[str, date] = field(default_factory=dict)

"""Which old versions of a secret can still be read: the audit behind ``cloudsync access --versions``.

A plan never lists versions (it would cost a call per secret); this audit does, on request,
once per secret that the stack manages: AWS ``ListSecretVersionIds``, GCP
``ListSecretVersions``, Azure one versions listing (25 a page), local one query. An old
version is *live* while a reader can still reach it (GCP, Azure, local: enabled; AWS: it
holds a staging label such as AWSPREVIOUS); it is *past its grace period* once the version
that superseded it is older than the secret's grace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloudsync.providers.base import RemoteSecret, VersionInfo


@dataclass(frozen=True)
class LiveVersion:
    """An enabled version other than the current one."""

    version: str
    age_days: int | None  # since it was written
    superseded_days: float | None  # since the version after it was written
    by_cloudsync: bool | None  # the version says so (Azure tags, AWS label); None: the cloud cannot tell

    def past_grace(self, grace: timedelta | None) -> bool:
        return grace is not None and self.superseded_days is not None and \
            self.superseded_days > grace.total_seconds() / 86400

    def as_dict(self, grace: timedelta | None) -> dict[str, Any]:
        return {"version": self.version, "age_days": self.age_days,
                "superseded_days": round(self.superseded_days, 2) if self.superseded_days is not None else None,
                "by_cloudsync": self.by_cloudsync, "past_grace": self.past_grace(grace)}


def live_old_versions(versions: Sequence[VersionInfo], now: datetime,
                      current: str | None = None) -> tuple[LiveVersion, ...]:
    """The enabled versions other than ``current`` (``versions`` newest first), with their ages.

    ``current`` is the version the bulk read says is current: written in the same second,
    two versions tie on creation time (Azure's resolution), so the order alone cannot say.
    """
    ids = [v.version for v in versions]
    current = (current or "").split(" ", 1)[0]  # GCP reports "3 (disabled)" for a disabled latest version
    if current not in ids:
        current = ids[0] if ids else ""
    found = []
    for index, version in enumerate(versions):
        if version.version == current or not version.enabled:
            continue
        newer = versions[index - 1] if index > 0 else version
        age = (now - version.created_at).days if version.created_at else None
        superseded = (now - newer.created_at).total_seconds() / 86400 if newer.created_at else None
        found.append(LiveVersion(version.version, age, superseded, version.by_cloudsync))
    return tuple(found)


def old_version_documents(remote: RemoteSecret | None, now: datetime) -> list[dict[str, Any]] | None:
    """The policy input's ``remote.old_versions``: None when the run did not list versions."""
    if remote is None or remote.versions is None:
        return None
    # Not rounded: a grace of 0 is over a second after the next version was written.
    return [{"version": v.version, "age_days": v.age_days, "superseded_days": v.superseded_days,
             "by_cloudsync": v.by_cloudsync} for v in live_old_versions(remote.versions, now, remote.current_version)]

"""The managed attributes of a change, before and after: what plan JSON shows a policy engine.

Terraform's plan JSON carries ``change.before`` and ``change.after``; Conftest and OPA
policies are written against them. cloudsync's plan JSON does the same over the
attributes it manages — labels, description, readers, expiry, deletion protection,
rotation, and the value's version and fingerprint (a keyed digest: never a value).

Both sides have the same keys, so ``before.x != after.x`` is always a meaningful test;
``before`` is ``null`` when the secret does not exist yet (create) and ``after`` when
it is deleted. The same module gives the display lines that show both sides
(``description: "old" → "new"``), so text, markdown and JSON never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloudsync.config.durations import format_duration
from cloudsync.plan.model import Action, Change, ValueMode
from cloudsync.providers.base import RemoteSecret
from cloudsync.values.fingerprint import short

ARROW = "→"
SIDE_LIMIT = 300  # characters of one side of a description shown in a detail line


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _readers(readers: frozenset[str] | None) -> list[str] | None:
    return sorted(readers) if readers is not None else None


def _value_before(have: RemoteSecret) -> dict[str, Any]:
    record = have.record
    return {"version": have.current_version,
            "fingerprint": short(record.fingerprint) if record and record.fingerprint else None,
            "written_at": _iso(record.written_at) if record else None,
            "changed_outside_cloudsync": have.value_drifted}


def before(change: Change) -> dict[str, Any] | None:
    """The managed attributes as the target holds them; ``None`` when there is nothing yet
    (a create) or the plan does not know them (a plan read back from a saved file)."""
    have = change.before
    if have is None:
        return None
    return {"labels": dict(have.labels), "description": have.description, "readers": _readers(have.readers),
            "expires_at": _iso(have.expires_at), "deletion_protection": have.protected,
            "purge_on_delete": have.purge_on_delete,
            # The clouds do not record a rotation period: what is known is when the value was written.
            "rotation": None, "deleted": have.deleted, "value": _value_before(have)}


def after(change: Change) -> dict[str, Any] | None:
    """The managed attributes once apply has run; ``None`` for a delete."""
    want = change.after
    if change.action is Action.DELETE or want is None:
        return None
    value = change.value
    if value is not None and value.mode is not ValueMode.UNKNOWN:
        shown: dict[str, Any] = {"written": True, "mode": value.mode.value, "version": None,
                                 "fingerprint": short(value.fingerprint) if value.fingerprint else None}
    elif change.before is not None:  # the value stays (or, metadata-only, is not known to change)
        shown = {"written": False, "mode": value.mode.value if value else None, **_value_before(change.before)}
        shown.pop("changed_outside_cloudsync")
    else:
        shown = {"written": False, "mode": None, "version": None, "fingerprint": None}
    rotation = ({"every": format_duration(change.rotation), "by": change.rotation_by or "cloudsync"}
                if change.rotation is not None else None)
    return {"labels": dict(want.labels), "description": want.description, "readers": _readers(want.readers),
            "expires_at": _iso(want.expires_at), "deletion_protection": want.protected,
            "purge_on_delete": want.purge_on_delete, "rotation": rotation, "deleted": False, "value": shown}


# --- display lines: both sides ------------------------------------------------------------


def quoted(text: str | None, limit: int = SIDE_LIMIT) -> str:
    """A side of a change as people read it: ``"text"`` (cut at ``limit``), or ``(none)``."""
    if text is None or text == "":
        return "(none)"
    cut = text if len(text) <= limit else text[:limit] + "…"
    return '"' + cut.replace("\\", "\\\\").replace('"', '\\"') + '"'


def description_line(old: str | None, new: str | None) -> str:
    return f"description: {quoted(old)} {ARROW} {quoted(new)}"


def labels_line(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """Each label that differs, with both sides: ``labels: env: "dev" → "prod", tier: (none) → "gold"``."""
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return "labels: " + ", ".join(f"{k}: {quoted(old.get(k), 100)} {ARROW} {quoted(new.get(k), 100)}" for k in keys)

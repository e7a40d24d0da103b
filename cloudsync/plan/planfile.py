"""Saved plan files: no plaintext, signed, refused when tampered with or stale.

A plan file records each change (action, reasons, the desired state in the target's terms,
how the value is produced and, for a value from a source, its fingerprint) and the
*revision* of every remote secret the plan looked at. ``apply FILE`` re-reads the targets
and refuses the plan when any revision moved or a desired value's fingerprint changed.

Signing: HMAC-SHA256 under ``CLOUDSYNC_PLAN_KEY`` (shared by the plan and apply jobs).
Without it, a key file ``.cloudsync/plan.key`` (mode 0600) in the stack folder is used, so
plans made and applied on one machine work out of the box.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.plan.model import Action, Change, Plan, Reason, ValueMode, ValuePlan
from cloudsync.plan.render import change_to_dict
from cloudsync.providers.base import RemoteSecret, SecretState, is_reserved
from cloudsync.values.secret import SecretValue

if TYPE_CHECKING:
    from cloudsync.plan.build import PlanRun

PLAN_KEY_ENV = "CLOUDSYNC_PLAN_KEY"
FILE_FORMAT = 1
KIND = "cloudsync-plan"


def _plan_key(root: Path) -> bytes:
    raw = os.environ.get(PLAN_KEY_ENV)
    if raw:
        if len(raw) < 16:
            raise CloudsyncError(Diagnostic(f"{PLAN_KEY_ENV} is too short", hint="use at least 32 random characters"))
        return raw.encode("utf-8")
    path = root / ".cloudsync" / "plan.key"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return base64.urlsafe_b64decode(path.read_bytes().strip())
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.urlsafe_b64encode(key) + b"\n")
    return key


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"cloudsync plan key id", hashlib.sha256).hexdigest()[:12]


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _state_dict(state: SecretState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "name": state.name,
        "labels": dict(state.labels),
        "description": state.description,
        "expires_at": state.expires_at.isoformat() if state.expires_at else None,
        "readers": sorted(state.readers) if state.readers is not None else None,
        "protected": state.protected,
        "purge_on_delete": state.purge_on_delete,
    }


def _state_from(data: dict[str, Any] | None) -> SecretState | None:
    if data is None:
        return None
    return SecretState(
        name=data["name"], labels=data["labels"], description=data["description"],
        expires_at=datetime.fromisoformat(data["expires_at"]) if data["expires_at"] else None,
        readers=frozenset(data["readers"]) if data["readers"] is not None else None,
        protected=data["protected"], purge_on_delete=data["purge_on_delete"],
    )


def revision_of(secret: RemoteSecret | None) -> str | None:
    if secret is None:
        return None
    return f"{secret.revision}{'/deleted' if secret.deleted else ''}"


def _value_check(key: bytes, value: SecretValue) -> str:
    """A keyed digest of a desired value under the plan key, to detect changed sources at apply."""
    return hmac.new(key, b"cloudsync plan value\0" + value.reveal(), hashlib.sha256).hexdigest()[:32]


def write_plan(run: PlanRun, path: Path, root: Path) -> None:
    plan = run.plan
    key = _plan_key(root)
    changes = []
    for change in plan.real_changes:
        entry = change_to_dict(change)
        entry["after"] = _state_dict(change.after)
        if change.value is not None:
            entry["value"] = {"mode": change.value.mode.value, "fingerprint": change.value.fingerprint,
                              "key_id": change.value.key_id, "spec": change.value.spec,
                              "copy_from": change.value.copy_from, "regenerate": change.value.regenerate}
        value = run.values.resolved.get(change.secret) if change.value else None
        if value is not None and change.value is not None and change.value.mode is ValueMode.SOURCE:
            entry["value"]["check"] = _value_check(key, value)
        changes.append(entry)
    body = {
        "kind": KIND,
        "file_format": FILE_FORMAT,
        "stack": plan.stack,
        "created_at": plan.created_at.isoformat(),
        "metadata_only": plan.metadata_only,
        "targets": plan.targets,
        "changes": changes,
        "unchanged": plan.summary()["unchanged"],
        "revisions": relevant_revisions(plan.stack, run),
    }
    signed = {"body": body, "signature": {"alg": "hmac-sha256", "key_id": _key_id(key),
                                          "value": hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(signed, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_plan(path: Path, root: Path, *, verify: bool = True) -> dict[str, Any]:
    """The verified body of a plan file; refuse unreadable, tampered or unknown-key files."""
    try:
        signed = json.loads(path.read_text(encoding="utf-8"))
        body = signed["body"]
        signature = signed["signature"]
        if body.get("kind") != KIND:
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise CloudsyncError(Diagnostic(f"{path} is not a cloudsync plan file",
                                        hint="create one with `cloudsync plan --out FILE`")) from None
    if body.get("file_format") != FILE_FORMAT:
        raise CloudsyncError(Diagnostic(f"{path}: plan file format {body.get('file_format')} is not supported"))
    if verify:
        key = _plan_key(root)
        if signature.get("key_id") != _key_id(key):
            raise CloudsyncError(Diagnostic(f"{path} is signed by an unknown key",
                                            hint=f"set {PLAN_KEY_ENV} to the key the plan job used"))
        expected = hmac.new(key, _canonical(body), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(signature.get("value"))):
            raise CloudsyncError(Diagnostic(f"{path} has been modified since it was signed; refusing it",
                                            hint="make a new plan"))
    return body  # type: ignore[no-any-return]


def plan_from_body(body: dict[str, Any]) -> Plan:
    changes = []
    for entry in body["changes"]:
        value = entry.get("value")
        changes.append(Change(
            address=entry["address"], target=entry["target"], provider=entry["provider"],
            secret=entry["secret"], remote_name=entry["remote_name"], action=Action(entry["action"]),
            reasons=tuple(Reason(r) for r in entry["reasons"]), after=_state_from(entry.get("after")),
            value=ValuePlan(ValueMode(value["mode"]), fingerprint=value["fingerprint"], key_id=value["key_id"],
                            spec=value["spec"], copy_from=value["copy_from"], regenerate=value["regenerate"])
            if value else None,
            details=tuple(entry.get("details", ())), file=entry.get("file"), line=entry.get("line"),
        ))
    return Plan(stack=body["stack"], changes=changes, unchanged=int(body.get("unchanged", 0)),
                created_at=datetime.fromisoformat(body["created_at"]),
                metadata_only=body["metadata_only"], targets=list(body["targets"]))


def relevant_revisions(stack: str, run: PlanRun) -> dict[str, dict[str, str | None]]:
    """Revisions of the secrets a plan depends on: declared names and the stack's own."""
    declared: dict[str, set[str]] = {}
    for want in run.desired:
        declared.setdefault(want.target, set()).add(want.remote_name)
    result: dict[str, dict[str, str | None]] = {}
    for target, secrets in sorted(run.actual.items()):
        names = declared.get(target, set()) | {n for n, s in secrets.items() if s.owner == stack and not is_reserved(n)}
        result[target] = {name: revision_of(secrets.get(name)) for name in sorted(names)}
    return result


def stale_reasons(body: dict[str, Any], fresh: PlanRun, root: Path) -> list[str]:
    """Why a saved plan no longer describes the world (empty when it still does)."""
    reasons: list[str] = []
    now_revisions = relevant_revisions(body["stack"], fresh)
    for target, saved in body["revisions"].items():
        current = now_revisions.get(target, {})
        for name in sorted(set(saved) | set(current)):
            if saved.get(name) != current.get(name):
                reasons.append(f"{target}:{name} changed in the target since the plan was made")
    key = _plan_key(root)
    for entry in body["changes"]:
        planned = entry.get("value") or {}
        if planned.get("mode") == ValueMode.SOURCE.value and planned.get("check"):
            value = fresh.values.resolved.get(entry["secret"])
            if value is None or not hmac.compare_digest(_value_check(key, value), planned["check"]):
                reasons.append(f"{entry['address']}: the desired value changed since the plan was made")
    return reasons


def bind(body: dict[str, Any], fresh: PlanRun) -> PlanRun:
    """The saved plan's changes, attached to the freshly read remote state."""
    saved = plan_from_body(body)
    saved.changes = [replace(c, before=fresh.actual.get(c.target, {}).get(c.remote_name)) for c in saved.changes]
    from cloudsync.plan.build import PlanRun

    return PlanRun(plan=saved, values=fresh.values, actual=fresh.actual, desired=fresh.desired, access=fresh.access)

"""Saved plan files: no plaintext, signed, refused when tampered with, malformed or stale.

A plan file records each change (action, reasons, the desired state in the target's terms,
how the value is produced and, for a value from a source, its fingerprint) and the
*revision* of every remote secret the plan looked at. ``apply FILE`` re-reads the targets
and refuses the plan when any revision moved or a desired value's fingerprint changed.

Signing: HMAC-SHA256 under ``CLOUDSYNC_PLAN_KEY`` (shared by the plan and apply jobs).
Without it, a key file ``.cloudsync/plan.key`` (mode 0600) in the stack folder is used, so
plans made and applied on one machine work out of the box — but never in CI (``CI=true``),
where a plan signed by a key file could only ever be applied on the runner that made it.
Every message says which key signed or checked a plan.

Reading is bounded before anything is parsed (file size, JSON nesting depth); after the
signature, the body is validated against :mod:`cloudsync.plan.planfile_body`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cloudsync.diagnostics import CloudsyncError, Diagnostic
from cloudsync.keymaterial import GENERATE_HINT, MIN_KEY_CHARS, KeyProblem, env_key, env_key_state, key_file, read_key_file
from cloudsync.plan.model import Change, Plan, ValueMode, ValuePlan
from cloudsync.plan.planfile_body import (
    FILE_FORMAT,
    KIND,
    PlanBody,
    SavedState,
    SignedPlan,
    describe,
    printable,
    validate_body,
)
from cloudsync.plan.render import change_to_dict
from cloudsync.providers.base import RemoteSecret, SecretState, is_reserved
from cloudsync.values.secret import SecretValue

if TYPE_CHECKING:
    from cloudsync.plan.build import PlanRun

PLAN_KEY_ENV = "CLOUDSYNC_PLAN_KEY"
# A change takes ~830 bytes, so this holds ~80,000 changes; larger estates shard by target.
MAX_PLAN_BYTES = 64 * 1024 * 1024
# A plan file is 6 levels deep (signature > body > changes > change > after > labels).
MAX_DEPTH = 16


def in_ci() -> bool:
    """Whether this runs in CI: GitHub Actions, GitLab CI and most others set ``CI=true``."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class PlanKey:
    material: bytes = field(repr=False)
    source: str  # for messages: which key this is, never the key itself

    @property
    def from_env(self) -> bool:
        return self.source == PLAN_KEY_ENV

    @property
    def key_id(self) -> str:
        return _key_id(self.material)


def plan_key(root: Path, *, create: bool, file_allowed_in_ci: bool = False) -> PlanKey:
    """The key that signs and checks saved plans; raise KeyProblem for one that must not be used."""
    raw = env_key(PLAN_KEY_ENV)
    if raw is not None:
        return PlanKey(raw, PLAN_KEY_ENV)
    state = env_key_state(PLAN_KEY_ENV)
    if in_ci() and not file_allowed_in_ci:
        raise KeyProblem(
            f"{PLAN_KEY_ENV} {state} and CI=true: in CI, saved plans are signed and checked only with {PLAN_KEY_ENV}",
            hint=f"set {PLAN_KEY_ENV} to the same secret in the plan and the apply jobs, "
                 f"{MIN_KEY_CHARS} characters or more: {GENERATE_HINT}")
    path = root / ".cloudsync" / "plan.key"
    fix = f"delete {path} to get a new random key (plans signed with it can then no longer be applied), " \
          f"or set {PLAN_KEY_ENV}"
    if create:
        return PlanKey(key_file(path, fix=fix), f"the key file {path}")
    if not path.exists() and not path.is_symlink():
        raise KeyProblem(f"no plan key: {PLAN_KEY_ENV} {state} and {path} does not exist",
                         hint=f"set {PLAN_KEY_ENV} to the key the plan job used")
    return PlanKey(read_key_file(path, fix=fix), f"the key file {path}")


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


def _state_from(saved: SavedState | None) -> SecretState | None:
    if saved is None:
        return None
    return SecretState(
        name=saved.name, labels=dict(saved.labels), description=saved.description, expires_at=saved.expires_at,
        readers=frozenset(saved.readers) if saved.readers is not None else None,
        protected=saved.protected, purge_on_delete=saved.purge_on_delete,
    )


def revision_of(secret: RemoteSecret | None) -> str | None:
    if secret is None:
        return None
    return f"{secret.revision}{'/deleted' if secret.deleted else ''}"


def _value_check(key: bytes, value: SecretValue) -> str:
    """A keyed digest of a desired value under the plan key, to detect changed sources at apply."""
    return hmac.new(key, b"cloudsync plan value\0" + value.reveal(), hashlib.sha256).hexdigest()[:32]


def write_plan(run: PlanRun, path: Path, root: Path) -> str:
    """Save ``run`` signed to ``path``; return which key signed it (for the user to see)."""
    plan = run.plan
    try:
        # A metadata-only plan is never applied (a fork's pull request has no secrets), so
        # the CI rule does not stand in its way.
        key = plan_key(root, create=True, file_allowed_in_ci=plan.metadata_only)
    except KeyProblem as problem:
        raise CloudsyncError(Diagnostic(f"the plan was not saved: {problem.message}", file=str(path),
                                        hint=problem.hint)) from None
    changes = []
    for change in plan.real_changes:
        entry = change_to_dict(change)
        entry["after"] = _state_dict(change.after)
        if change.value is not None:
            entry["value"] = {"mode": change.value.mode.value, "fingerprint": change.value.fingerprint,
                              "key_id": change.value.key_id, "spec": change.value.spec,
                              "copy_from": change.value.copy_from, "regenerate": change.value.regenerate}
            if change.value.grace is not None:
                entry["value"]["grace_seconds"] = int(change.value.grace.total_seconds())
        if change.follows:
            entry["follows"] = list(change.follows)
        value = run.values.resolved.get(change.secret) if change.value else None
        if value is not None and change.value is not None and change.value.mode is ValueMode.SOURCE:
            entry["value"]["check"] = _value_check(key.material, value)
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
    signed = {"body": body, "signature": {
        "alg": "hmac-sha256", "key_id": key.key_id, "key_source": "env" if key.from_env else "file",
        "value": hmac.new(key.material, _canonical(body), hashlib.sha256).hexdigest()}}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(signed, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return key.source


def read_plan(path: Path, root: Path, *, verify: bool = True) -> dict[str, Any]:
    """The verified, validated body of a plan file; refuse anything else with a diagnostic."""
    signed = _envelope(path)
    body = signed.body
    if body.get("kind") != KIND:
        raise _refused(path, "not a cloudsync plan file")
    if body.get("file_format") != FILE_FORMAT:
        found = body.get("file_format")
        shown = found if isinstance(found, int) and not isinstance(found, bool) else "(unknown)"
        raise _refused(path, f"plan file format {printable(shown, quote=False)} is not supported",
                       hint="make the plan and apply it with the same version of cloudsync")
    canonical = _canonical(body)
    if verify:
        _check_signature(path, root, signed, canonical)
    try:
        checked = validate_body(canonical)
    except ValidationError as exc:
        raise _refused(path, "the plan's content is not valid (signed, but not a plan this cloudsync can apply): "
                             + describe(exc), hint="make a new plan with this version of cloudsync") from None
    return checked.model_dump(mode="json")


def _refused(path: Path, message: str, hint: str | None = None) -> CloudsyncError:
    return CloudsyncError(Diagnostic(message, file=str(path), hint=hint))


_NOT_A_PLAN_HINT = "create one with `cloudsync plan --out FILE`"


def _envelope(path: Path) -> SignedPlan:
    """The file parsed, after bounding its size and nesting: the bounds come before any parser."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise _refused(path, f"cannot read the plan file: {exc.strerror}") from None
    if len(data) > MAX_PLAN_BYTES:
        raise _refused(path, f"the plan file is larger than {MAX_PLAN_BYTES} bytes; refusing to read it",
                       hint="plan fewer targets per file (`--target`)")
    if _nesting(data) > MAX_DEPTH:
        raise _refused(path, f"not a cloudsync plan file: nested more than {MAX_DEPTH} levels deep",
                       hint=_NOT_A_PLAN_HINT)
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _refused(path, "not a cloudsync plan file: not UTF-8 text", hint=_NOT_A_PLAN_HINT) from None
    except json.JSONDecodeError as exc:
        raise CloudsyncError(Diagnostic(f"not a cloudsync plan file: not valid JSON ({exc.msg})", file=str(path),
                                        line=exc.lineno, col=exc.colno, hint=_NOT_A_PLAN_HINT)) from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise _refused(path, f"not a cloudsync plan file: not valid JSON ({printable(exc, limit=80, quote=False)})",
                       hint=_NOT_A_PLAN_HINT) from None
    try:
        return SignedPlan.model_validate(parsed, strict=True)
    except ValidationError as exc:
        raise _refused(path, f"not a cloudsync plan file: {describe(exc)}", hint=_NOT_A_PLAN_HINT) from None


# Brackets inside JSON strings are no structure. Escaped backslashes, then escaped quotes,
# are dropped first, so the remaining quotes delimit strings exactly as a JSON parser sees
# them (over the part of a file it accepts). Every step is a C-speed pass over the bytes.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _STEP[_open], _STEP[_close] = 1, -1


def _nesting(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, before any parser sees it."""
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Two adjacent quotes close one string and open the next (or are an empty string):
    # dropping them leaves every other character inside or outside a string as it was.
    structure = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = b"".join(structure.split(b'"')[::2])
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _check_signature(path: Path, root: Path, signed: SignedPlan, canonical: bytes) -> None:
    try:
        key = plan_key(root, create=False)
    except KeyProblem as problem:
        raise _refused(path, f"cannot check the plan's signature: {problem.message}", hint=problem.hint) from None
    signature = signed.signature
    if signature.key_id != key.key_id:
        signer = {"env": PLAN_KEY_ENV, "file": "a .cloudsync/plan.key file"}.get(signature.key_source or "")
        if signer is not None and signature.key_source == "file":
            hint = (f"it was signed with {signer} on the machine that made it; set {PLAN_KEY_ENV} "
                    "to the same secret where plans are made and where they are applied")
        else:
            hint = f"set {PLAN_KEY_ENV} to the key the plan job used"
        raise _refused(path, f"the plan is signed by an unknown key (checked with {key.source})", hint=hint)
    expected = hmac.new(key.material, canonical, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.value):
        raise _refused(path, f"the plan has been modified since it was signed (checked with {key.source}); "
                             "refusing it", hint="make a new plan")


def _model(body: dict[str, Any]) -> PlanBody:
    """A body returned by :func:`read_plan` as its model."""
    try:
        return PlanBody.model_validate(body)
    except ValidationError as exc:
        raise CloudsyncError(Diagnostic(f"the plan's content is not valid: {describe(exc)}")) from None


def plan_from_body(body: dict[str, Any]) -> Plan:
    saved = _model(body)
    changes = [
        Change(
            address=entry.address, target=entry.target, provider=entry.provider, secret=entry.secret,
            remote_name=entry.remote_name, action=entry.action, reasons=tuple(entry.reasons),
            after=_state_from(entry.after),
            value=ValuePlan(entry.value.mode, fingerprint=entry.value.fingerprint, key_id=entry.value.key_id,
                            spec=entry.value.spec, copy_from=entry.value.copy_from,
                            regenerate=entry.value.regenerate, grace=_grace(entry.value.grace_seconds))
            if entry.value else None,
            details=tuple(entry.details), file=entry.file, line=entry.line, follows=tuple(entry.follows),
        )
        for entry in saved.changes
    ]
    return Plan(stack=saved.stack, changes=changes, unchanged=saved.unchanged, created_at=saved.created_at,
                metadata_only=saved.metadata_only, targets=list(saved.targets))


def _grace(seconds: int | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None


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
    saved = _model(body)
    reasons: list[str] = []
    now_revisions = relevant_revisions(saved.stack, fresh)
    for target, revisions in saved.revisions.items():
        current = now_revisions.get(target, {})
        for name in sorted(set(revisions) | set(current)):
            if revisions.get(name) != current.get(name):
                reasons.append(f"{target}:{name} changed in the target since the plan was made")
    try:
        key = plan_key(root, create=False)
    except KeyProblem as problem:
        raise CloudsyncError(Diagnostic(f"cannot check the saved plan's values: {problem.message}",
                                        hint=problem.hint)) from None
    for entry in saved.changes:
        planned = entry.value
        if planned is not None and planned.mode is ValueMode.SOURCE and planned.check:
            value = fresh.values.resolved.get(entry.secret)
            if value is None or not hmac.compare_digest(_value_check(key.material, value), planned.check):
                reasons.append(f"{entry.address}: the desired value changed since the plan was made")
    return reasons


def bind(body: dict[str, Any], fresh: PlanRun) -> PlanRun:
    """The saved plan's changes, attached to the freshly read remote state."""
    saved = plan_from_body(body)
    saved.changes = [replace(c, before=fresh.actual.get(c.target, {}).get(c.remote_name)) for c in saved.changes]
    from cloudsync.plan.build import PlanRun

    return PlanRun(plan=saved, values=fresh.values, actual=fresh.actual, desired=fresh.desired, access=fresh.access)

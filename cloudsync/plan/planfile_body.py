"""The saved plan's body as a model: every field typed, checked after the signature.

A valid signature says who wrote a body, not that it is well formed: a key holder, a bug or
a newer cloudsync can sign anything. Validating the body against these models turns every
such body into one diagnostic that names the field, instead of a KeyError half-way
through an apply. Unknown keys are refused: a body this version does not fully understand
is not applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloudsync.config.models import STACK_RE
from cloudsync.plan.model import Action, Reason, ValueMode

FILE_FORMAT = 1
KIND = "cloudsync-plan"
_SHOWN_ERRORS = 5


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SavedState(_Model):
    """The desired state of one secret, in the target's terms."""

    name: str
    labels: dict[str, str]
    description: str | None
    expires_at: AwareDatetime | None
    readers: list[str] | None
    protected: bool
    purge_on_delete: bool


class SavedValue(_Model):
    """How apply obtains the value it writes; ``check`` is a digest under the plan key."""

    mode: ValueMode
    fingerprint: str | None = None
    key_id: str | None = None
    spec: str | None = None
    copy_from: str | None = None
    regenerate: bool = False
    check: str | None = None
    grace_seconds: int | None = Field(default=None, ge=0, le=100 * 365 * 86400)  # `--grace`


class SavedChange(_Model):
    address: str
    target: str
    provider: str
    secret: str
    remote_name: str
    action: Action
    reasons: list[Reason]
    details: list[str] = []
    value: SavedValue | None = None
    file: str | None = None
    line: int | None = Field(default=None, ge=1)
    after: SavedState | None = None
    follows: list[str] = Field(default=[], max_length=1000)  # secrets whose writes apply first


class PlanBody(_Model):
    kind: Literal["cloudsync-plan"]
    file_format: Literal[1]
    stack: str = Field(pattern=STACK_RE)
    created_at: AwareDatetime
    metadata_only: bool
    targets: list[str]
    changes: list[SavedChange]
    unchanged: int = Field(ge=0)
    revisions: dict[str, dict[str, str | None]]

    @model_validator(mode="after")
    def _changes_stay_in_the_plans_targets(self) -> PlanBody:
        # apply re-reads (and checks for staleness) only the plan's targets: a change
        # elsewhere would be applied unchecked.
        known = set(self.targets)
        for index, change in enumerate(self.changes):
            if change.target not in known:
                raise ValueError(f"changes[{index}]: target {printable(change.target)} is not one of the plan's targets")
        return self


class Signature(BaseModel):
    """The unsigned part of a plan file: which key signed it and the HMAC of the body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alg: Literal["hmac-sha256"]
    key_id: str
    value: str
    key_source: Literal["env", "file"] | None = None  # only for messages: it is not signed


class SignedPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    body: dict[str, Any]
    signature: Signature


def validate_body(canonical: bytes) -> PlanBody:
    """The body in its canonical JSON form, validated strictly (JSON types, no coercion)."""
    return PlanBody.model_validate_json(canonical, strict=True)


def describe(exc: ValidationError) -> str:
    """The first few problems of a body, each with its field path; never an input value."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    lines = [_one(error["loc"], error["msg"]) for error in errors[:_SHOWN_ERRORS]]
    more = len(errors) - _SHOWN_ERRORS
    return "; ".join(lines) + (f"; and {more} more" if more > 0 else "")


def _one(loc: Sequence[int | str], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{_field(part)}" for part in loc).lstrip(".")
    return printable(f"{where}: {msg}" if where else msg, limit=300, quote=False)


def _field(name: str) -> str:
    return name if name.isidentifier() and len(name) <= 40 else printable(name)


def printable(text: Any, *, limit: int = 40, quote: bool = True) -> str:
    """``text`` safe for a terminal: control characters escaped, at most ``limit`` characters."""
    shown = str(text)
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in shown)
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    return f"'{shown}'" if quote else shown

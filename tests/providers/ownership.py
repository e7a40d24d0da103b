"""One ownership check for every provider, driven per cloud by its own test module.

``Provider.apply`` refuses to update, restore or delete a secret its stack does not own;
only an update that adopts an *unmanaged* secret may go on. The refusal is written once in
the base class, so each adapter must show that it really goes through it: a secret of
another stack and an unowned one, read back through the adapter itself, are refused with
a :class:`NotOwnedError` naming the owner, and nothing about them changes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudsync.plan.actions import Reason
from cloudsync.providers.base import (
    CreateRequest,
    DeleteRequest,
    NotOwnedError,
    Provider,
    ReadQuery,
    RemoteSecret,
    RestoreRequest,
    SecretState,
    UpdateRequest,
    ValueRecord,
    now,
)
from cloudsync.values.secret import SecretValue
from tests.conftest import assert_no_canary

STACK = "payments"
FOREIGN = "billing-api-key"  # owned by stack billing; a valid name in every cloud
UNOWNED = "legacy-token"  # written by hand, no cloudsync metadata
FOREIGN_VALUE = "billing-value"
UNOWNED_VALUE = "legacy-value"


def _state(name: str, labels: dict[str, str] | None = None) -> SecretState:
    return SecretState(name=name, labels=labels or {}, description=None, expires_at=None, readers=None)


def create_foreign(theirs: Provider[object]) -> None:
    """A secret of stack ``billing``, written by billing's own provider."""
    assert theirs.context.stack == "billing"
    theirs.apply(CreateRequest(stack="billing", name=FOREIGN, state=_state(FOREIGN), value=SecretValue(FOREIGN_VALUE),
                               record=ValueRecord(written_at=now()), reasons=frozenset({Reason.VALUE}),
                               token="b" * 40))


def _read(ours: Provider[object]) -> dict[str, RemoteSecret]:
    names = frozenset({FOREIGN, UNOWNED})
    return {s.name: s for s in ours.read(ReadQuery(stack=STACK, declared=names, access=names))}


def assert_foreign_secrets_refused(ours: Provider[object], canary: str,
                                   unchanged: Callable[[], None] | None = None) -> None:
    """Every write to FOREIGN and UNOWNED (both present in the target) is refused; both stay as they were."""
    found = _read(ours)
    expected = {FOREIGN: "is owned by stack 'billing'", UNOWNED: "is not managed by cloudsync"}
    for name, who in expected.items():
        before = found[name]
        value, record = SecretValue(canary), ValueRecord(fingerprint="f" * 32, written_at=now())
        state, token = _state(name, {"team": "payments"}), "p" * 40
        requests = [
            UpdateRequest(stack=STACK, name=name, before=before, token=token, state=state, value=value,
                          record=record, reasons=frozenset({Reason.VALUE, Reason.LABELS})),
            RestoreRequest(stack=STACK, name=name, before=before, token=token, state=state, value=value,
                           record=record, reasons=frozenset({Reason.VALUE})),
            DeleteRequest(stack=STACK, name=name, before=before, token=token),
        ]
        for request in requests:
            with pytest.raises(NotOwnedError) as raised:
                ours.apply(request)
            error = raised.value
            assert error.code == "NotOwned" and not error.transient
            assert f"{name} {who}" in error.message and f"stack {STACK} does not {request.action.value}" in error.message
            assert error.hint
            assert_no_canary(canary, error.message, str(error), error.hint or "")
    # Adopting takes an unmanaged secret over; it never takes another stack's.
    with pytest.raises(NotOwnedError):
        ours.apply(UpdateRequest(stack=STACK, name=FOREIGN, before=found[FOREIGN], token="a" * 40,
                                 state=_state(FOREIGN), reasons=frozenset({Reason.OWNERSHIP})))
    after = _read(ours)
    assert (after[FOREIGN].owner, after[FOREIGN].managed, after[FOREIGN].deleted) == ("billing", True, False)
    assert (after[UNOWNED].owner, after[UNOWNED].managed, after[UNOWNED].deleted) == (None, False, False)
    assert dict(after[UNOWNED].labels) == dict(found[UNOWNED].labels)
    assert after[FOREIGN].revision == found[FOREIGN].revision and after[UNOWNED].revision == found[UNOWNED].revision
    assert ours.read_value(FOREIGN) == SecretValue(FOREIGN_VALUE)
    assert ours.read_value(UNOWNED) == SecretValue(UNOWNED_VALUE)
    if unchanged is not None:
        unchanged()


def assert_unmanaged_secret_can_be_adopted(ours: Provider[object]) -> None:
    """The one exception: an update with the ownership reason takes an unmanaged secret over."""
    before = _read(ours)[UNOWNED]
    ours.apply(UpdateRequest(stack=STACK, name=UNOWNED, before=before, token="c" * 40, state=_state(UNOWNED),
                             record=before.record, reasons=frozenset({Reason.OWNERSHIP})))
    adopted = _read(ours)[UNOWNED]
    assert (adopted.owner, adopted.managed) == (STACK, True)
    assert ours.read_value(UNOWNED) == SecretValue(UNOWNED_VALUE)  # adopting keeps the value

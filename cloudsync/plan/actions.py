"""The closed vocabulary of a change: what is done to a secret (:class:`Action`) and why
(:class:`Reason`).

Both the plan and the provider boundary speak it, so it lives in a module of its own that
imports nothing: an adapter reads ``request.reasons`` as these enums without importing
the plan model.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    NOOP = "noop"


class Reason(StrEnum):
    VALUE = "value"
    LABELS = "labels"
    DESCRIPTION = "description"
    ACCESS = "access"
    EXPIRY = "expiry"
    ROTATION = "rotation"
    REPLICATION = "replication"
    OWNERSHIP = "ownership"
    REPLACE = "replace"  # a new value asked for by name (`--replace`), not due by any rule


REASON_ORDER = list(Reason)

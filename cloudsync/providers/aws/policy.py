"""A secret's resource policy ↔ cloudsync's ``readers``.

cloudsync owns one kind of grant: ``Allow secretsmanager:GetSecretValue`` to principals.
Reading a policy, every principal an ``Allow`` statement lets read the value (including
wildcard actions such as ``secretsmanager:*``) is a reader, so an out-of-band grant shows
as drift, and rewriting the readers replaces every read-granting statement with cloudsync's
own. Statements that grant no read (``Deny``, other actions) are reported as
``other_access`` and are kept as they are when cloudsync rewrites the policy.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

READ_ACTION = "secretsmanager:GetSecretValue"
READERS_SID = "CloudsyncReaders"


@dataclass(frozen=True)
class ParsedPolicy:
    readers: frozenset[str]
    other_access: tuple[str, ...]
    kept: tuple[dict[str, Any], ...]  # statements cloudsync keeps when it rewrites the policy


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _grants_read(statement: dict[str, Any]) -> bool:
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        # NotAction allows everything not listed: a read unless GetSecretValue is excluded.
        return not any(fnmatch.fnmatch(READ_ACTION.lower(), str(a).lower())
                       for a in _as_list(statement["NotAction"]))
    return any(fnmatch.fnmatch(READ_ACTION.lower(), str(a).lower()) for a in actions)


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*" or "NotPrincipal" in statement:
        return ["*"]
    if not isinstance(principal, dict):
        return []
    found: list[str] = []
    for kind, ids in principal.items():
        for one in _as_list(ids):
            # AWS principals are written as ARNs; services and federated ids keep their kind.
            found.append(str(one) if kind == "AWS" else f"{kind.lower()}:{one}")
    return found


def _describe(statement: dict[str, Any]) -> str:
    actions = ",".join(str(a) for a in _as_list(statement.get("Action") or statement.get("NotAction")))
    who = ",".join(_principals(statement)) or "-"
    return f"{statement.get('Effect', '?')} {actions or '-'} to {who}"


def parse_policy(text: str | None) -> ParsedPolicy:
    """Readers and other grants of a policy document (``None``: the secret has no policy)."""
    if not text:
        return ParsedPolicy(frozenset(), (), ())
    try:
        document = json.loads(text)
        statements = _as_list(document.get("Statement"))
    except (ValueError, AttributeError):
        return ParsedPolicy(frozenset(), ("unparseable resource policy",), ())
    readers: set[str] = set()
    other: list[str] = []
    kept: list[dict[str, Any]] = []
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        if statement.get("Effect") == "Allow" and _grants_read(statement):
            # Any read grant is cloudsync's business: it shows as readers (drift when undeclared)
            # and is replaced by cloudsync's own statement when the readers are rewritten.
            readers.update(_principals(statement))
            continue
        other.append(_describe(statement))
        kept.append(statement)
    return ParsedPolicy(frozenset(readers), tuple(other), tuple(kept))


def render_policy(readers: Iterable[str], kept: Sequence[dict[str, Any]] = ()) -> str | None:
    """The policy granting read to exactly ``readers`` (plus kept statements); None when empty."""
    statements = list(kept)
    principals = sorted(readers)
    if principals:
        statements.append({
            "Sid": READERS_SID,
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": READ_ACTION,
            "Resource": "*",
        })
    if not statements:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)

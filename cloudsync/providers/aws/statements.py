"""IAM policy documents, reduced to the statements that decide who reads a secret's value.

A document arrives as boto3 gives it (a dict: botocore decodes IAM's documents), as IAM
sends it on the wire (URL-encoded JSON, RFC 3986), or as plain JSON text (a secret's
resource policy). Only statements whose ``Action`` / ``NotAction`` covers
``secretsmanager:GetSecretValue`` are kept; everything else in a document cannot grant or
deny a read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from cloudsync.providers.aws.policy import READ_ACTION
from cloudsync.providers.aws.wildcards import action_matches, resource_pattern

# AWS caps documents at 10,240 characters (inline role policy) and 20,480 (a secret's
# resource policy); URL-encoding can triple that. Anything larger did not come from AWS.
MAX_DOCUMENT = 131_072
ANYONE = "*"


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Principals:
    """The ``Principal`` / ``NotPrincipal`` of a resource-policy statement, normalised.

    AWS principals are ARNs (a bare account id becomes that account's root ARN); services
    and federated ids keep their kind as a prefix (``service:lambda.amazonaws.com``), as
    :mod:`cloudsync.providers.aws.policy` writes them.
    """

    anyone: bool
    ids: frozenset[str]
    negated: bool = False  # NotPrincipal: everyone except ``ids``

    def names(self, principal: str) -> bool:
        """Whether the statement applies to ``principal`` (an ARN, ``*`` or ``service:...``)."""
        if principal == ANYONE:
            # Everyone-but-some still reaches most of "anyone": only an unconditional "anyone" names it.
            return self.anyone and not self.negated
        listed = self.anyone or principal in self.ids or account_root(principal) in self.ids
        return not listed if self.negated else listed


@dataclass(frozen=True)
class Statement:
    """One statement that allows or denies reading a secret's value."""

    effect: Effect
    label: str  # "statement <Sid>", or "statement #<n>" (1-based) when it has no Sid
    resources: tuple[str, ...] | None  # None: no Resource element (a resource policy's own secret)
    not_resource: bool
    conditional: bool  # has a non-empty Condition
    principals: Principals | None = None  # resource policies only

    def covers(self, arn: str) -> tuple[bool, bool]:
        """Whether the statement applies to the secret ``arn``, and whether that depends on the request.

        A pattern with a policy variable (``${aws:username}``) is matched as ``*``: it may
        cover the secret for some callers, so the match is request-dependent.
        """
        if self.resources is None:
            return True, False
        certain = variable = False
        for pattern in self.resources:
            compiled = resource_pattern(pattern)
            if compiled.matches(arn):
                if compiled.variable:
                    variable = True
                else:
                    certain = True
        if self.not_resource:
            # Excluded for sure by a plain pattern; maybe excluded (for some callers) by a variable one.
            return (False, False) if certain else (True, variable)
        return (True, False) if certain else (variable, variable)


@dataclass(frozen=True)
class ParsedDocument:
    statements: tuple[Statement, ...]
    problems: tuple[str, ...]  # why some of the document could not be understood


def decode(raw: object) -> dict[str, Any] | None:
    """A policy document from a dict, plain JSON text or URL-encoded JSON text (None: unreadable)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or len(raw) > MAX_DOCUMENT:
        return None
    # Plain JSON first: a plain document may hold a literal "%" that unquoting would corrupt.
    for text in (raw, unquote(raw)):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            continue
        if isinstance(document, dict):
            return document
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def reads(statement: Mapping[str, Any]) -> bool:
    """Whether the statement's Action / NotAction covers ``secretsmanager:GetSecretValue``."""
    if "NotAction" in statement:
        return not any(action_matches(str(a), READ_ACTION) for a in _as_list(statement["NotAction"]))
    return any(action_matches(str(a), READ_ACTION) for a in _as_list(statement.get("Action")))


def account_root(principal: str) -> str | None:
    """``arn:<partition>:iam::<account>:root`` of an IAM or STS principal ARN (None for anything else)."""
    parts = principal.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] in ("iam", "sts") and parts[4]:
        return f"arn:{parts[1]}:iam::{parts[4]}:root"
    return None


def _principals(statement: Mapping[str, Any], partition: str) -> Principals:
    negated = "NotPrincipal" in statement
    raw = statement.get("NotPrincipal" if negated else "Principal")
    if raw == ANYONE:
        return Principals(anyone=True, ids=frozenset(), negated=negated)
    anyone = False
    ids: set[str] = set()
    for kind, values in (raw.items() if isinstance(raw, Mapping) else ()):
        for value in _as_list(values):
            text = str(value)
            if kind == "AWS" and text == ANYONE:
                anyone = True
            elif kind == "AWS":
                ids.add(f"arn:{partition}:iam::{text}:root" if text.isdigit() else text)
            else:
                ids.add(f"{str(kind).lower()}:{text}")
    return Principals(anyone=anyone, ids=frozenset(ids), negated=negated)


def parse(raw: object, *, resource_policy: bool = False, partition: str = "aws") -> ParsedDocument:
    """The read-relevant statements of one document.

    ``resource_policy`` also reads each statement's principals (``partition`` names a bare
    account id's root ARN).
    """
    document = decode(raw)
    if document is None:
        return ParsedDocument((), ("unreadable policy document",))
    statements: list[Statement] = []
    problems: list[str] = []
    for index, entry in enumerate(_as_list(document.get("Statement")), start=1):
        if not isinstance(entry, Mapping):
            problems.append(f"statement #{index} is not an object")
            continue
        if not reads(entry):
            continue
        try:
            effect = Effect(str(entry.get("Effect")))
        except ValueError:
            problems.append(f"statement #{index} has no Allow/Deny effect")
            continue
        sid = entry.get("Sid")
        not_resource = "NotResource" in entry
        resources = entry.get("NotResource" if not_resource else "Resource")
        statements.append(Statement(
            effect=effect,
            label=f"statement {sid}" if isinstance(sid, str) and sid else f"statement #{index}",
            resources=None if resources is None else tuple(str(r) for r in _as_list(resources)),
            not_resource=not_resource,
            conditional=bool(entry.get("Condition")),
            principals=_principals(entry, partition) if resource_policy else None,
        ))
    return ParsedDocument(tuple(statements), tuple(problems))

"""The subset of Secret Manager's list filter syntax the fake understands.

Terms are joined by whitespace or ``AND`` and may be negated with ``NOT`` or ``-``:
``labels.KEY=VALUE``, ``labels.KEY:VALUE``, ``labels.KEY:*``, ``name:TEXT`` (substring),
``name=ID`` and, for versions, ``state:ENABLED`` / ``state=DISABLED``. Anything else
(``OR``, parentheses, other fields) is INVALID_ARGUMENT, never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc
from google.cloud import secretmanager

from tests.fakes.gcp.errors import FakeError

_TERM_RE = re.compile(r"^(labels\.[^:=\s]+|name|state)([:=])(\S+)$")


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str
    negated: bool


def parse_filter(text: str) -> list[Term]:
    terms: list[Term] = []
    negate = False
    for word in text.split():
        if word == "AND":
            continue
        if word == "NOT":
            negate = True
            continue
        if word in ("OR", "(", ")"):
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"the fake does not support {word!r} in filters")
        if word.startswith("-"):
            negate, word = True, word[1:]
        match = _TERM_RE.match(word)
        if not match:
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid filter term {word!r}")
        terms.append(Term(match[1], match[2], match[3].strip('"'), negate))
        negate = False
    return terms


def _secret_term(term: Term, secret: Any) -> bool:
    if term.field.startswith("labels."):
        key = term.field[len("labels."):]
        if key not in secret.labels:
            return False
        return (term.value == "*" and term.op == ":") or secret.labels[key] == term.value
    if term.field == "name":
        secret_id = secret.name.rsplit("/", 1)[1]
        return secret_id == term.value if term.op == "=" else term.value in secret_id
    raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"secrets cannot be filtered by {term.field!r}")


def matches_secret(terms: list[Term], secret: Any) -> bool:
    return all(_secret_term(t, secret) != t.negated for t in terms)


def matches_version(terms: list[Term], version: Any) -> bool:
    for term in terms:
        if term.field != "state":
            raise FakeError(grpc.StatusCode.INVALID_ARGUMENT, f"versions cannot be filtered by {term.field!r}")
        state = secretmanager.SecretVersion.State(version.state).name
        if (state == term.value.upper()) == term.negated:
            return False
    return True

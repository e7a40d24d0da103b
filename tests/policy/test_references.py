"""The reference checker and the batch rewrite work on tokens, never inside strings or fields."""

from __future__ import annotations

from cloudsync.policy.document import input_schema
from cloudsync.policy.references import check_references, rewrite

ROOTS = input_schema()["properties"]


def test_rewrite_replaces_only_variables() -> None:
    source = 'secret.name == "secret.name" && remote.secret == secret && size(secret.readers) > 0'
    assert rewrite(source, {"secret": "S[i]"}) == (
        'S[i].name == "secret.name" && remote.secret == S[i] && size(S[i].readers) > 0')


def test_strings_comments_and_raw_strings_are_not_references() -> None:
    source = "r'x.y' == \"nope.field\" // secret.nope\n && '''multi\nline''' != '' && secret.name != ''"
    assert check_references(source, ROOTS) == []


def test_comprehension_variables_are_typed_by_what_they_range_over() -> None:
    ok = 'secret.readers_resolved.exists(p, secret.readers_resolved[p].exists(i, i.startsWith("arn")))'
    assert check_references(ok, ROOTS) == []
    (problem,) = check_references("secret.readers.exists(r, r.owner == 1)", ROOTS)
    assert problem.message == "r is a string; it has no field 'owner'"

"""IAM's wildcard rules for Action and Resource patterns, as a table of named cases."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudsync.providers.aws.wildcards import MAX_PATTERN, action_matches, has_variable, resource_matches

READ = "secretsmanager:GetSecretValue"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:payments/db-password-AbC1eF"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret"

ACTIONS = [
    ("exact", "secretsmanager:GetSecretValue", True),
    ("case-insensitive", "SecretsManager:getsecretvalue", True),
    ("service wildcard", "secretsmanager:*", True),
    ("prefix wildcard", "secretsmanager:Get*", True),
    ("everything", "*", True),
    ("question mark", "secretsmanager:GetSecret?alue", True),
    ("question mark is one character", "secretsmanager:GetSecret?", False),
    ("another action", "secretsmanager:DescribeSecret", False),
    ("list wildcard", "secretsmanager:List*", False),
    ("another service", "iam:*", False),
    ("prefix of the service", "secrets*", True),
    ("wildcard in the service", "*:GetSecretValue", True),
    ("brackets are literal", "secretsmanager:[G]etSecretValue", False),
    ("a longer action is not a prefix match", "secretsmanager:GetSecretValueX", False),
    ("an interior * takes the first fit, not the last", "*e*e", True),
]


@pytest.mark.parametrize(("pattern", "expected"), [pytest.param(p, e, id=name) for name, p, e in ACTIONS])
def test_action_patterns(pattern: str, expected: bool) -> None:
    assert action_matches(pattern, READ) is expected


RESOURCES = [
    ("everything", "*", True),
    ("exact ARN with AWS's random suffix", ARN, True),
    ("ARN without the 6-character suffix does not match", f"{SECRET}:payments/db-password", False),
    ("suffix as six question marks", f"{SECRET}:payments/db-password-??????", True),
    ("five question marks are too few", f"{SECRET}:payments/db-password-?????", False),
    ("name prefix wildcard", f"{SECRET}:payments/*", True),
    ("any region and account", "arn:aws:secretsmanager:*:*:secret:payments/*", True),
    ("resource names are case-sensitive", f"{SECRET}:Payments/*", False),
    ("service names are case-sensitive in ARNs", "arn:aws:SecretsManager:*:*:secret:payments/*", False),
    ("another account", "arn:aws:secretsmanager:*:210987654321:secret:*", False),
    ("another path", f"{SECRET}:billing/*", False),
    ("whole service", "arn:aws:secretsmanager:*", True),
    ("a trailing * runs past the colons", "arn:aws:secretsmanager:us-*", True),
    ("a * inside a segment stays in it", "arn:aws:secretsmanager:us-*1:secret:payments/*", False),
    ("a * inside a segment matches within it", "arn:aws:secretsmanager:us-*-1:*:secret:payments/*", True),
    ("? stands for one character of a segment", "arn:aws:secretsmanager:us-east-?:*:secret:*", True),
    ("? never stands for a colon", "arn:aws:secretsmanager:us-east-1?123456789012:secret:*", False),
    ("another partition", "arn:aws-cn:secretsmanager:*:*:secret:*", False),
    ("brackets are literal", f"{SECRET}:pay[m]ents/*", False),
    ("a literal * through ${*}", f"{SECRET}:payments/db-password-AbC1e${{*}}", False),
    ("a request variable matches as *", f"{SECRET}:${{aws:username}}/*", True),
    ("another resource type", "arn:aws:secretsmanager:*:*:rotation:*", False),
]


@pytest.mark.parametrize(("pattern", "expected"), [pytest.param(p, e, id=name) for name, p, e in RESOURCES])
def test_resource_patterns(pattern: str, expected: bool) -> None:
    assert resource_matches(pattern, ARN) is expected


def test_literal_variables_match_their_character() -> None:
    assert resource_matches(f"{SECRET}:a${{*}}b${{?}}c${{$}}", f"{SECRET}:a*b?c$")
    assert not resource_matches(f"{SECRET}:a${{*}}b", f"{SECRET}:axxb")


def test_only_request_variables_make_a_pattern_request_dependent() -> None:
    assert has_variable("arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team}/*")
    assert not has_variable("arn:aws:secretsmanager:*:*:secret:a${*}b${?}${$}")


def test_an_oversized_pattern_matches_nothing() -> None:
    assert not resource_matches("*" + "a" * MAX_PATTERN, ARN)
    assert not action_matches("*" + "a" * MAX_PATTERN, READ)


def test_many_wildcards_do_not_backtrack_exponentially() -> None:
    # A naive glob→regex translation (".*a.*a...b") never finishes on this: the run would hang.
    # fnmatch's atomic groups keep the match linear.
    hostile = "arn:aws:secretsmanager:*:*:secret:" + "*a" * 40 + "b"
    assert not resource_matches(hostile, f"{SECRET}:" + "a" * 500)
    assert not action_matches("*a" * 40 + "b", "a" * 500)


# --- the compiled matcher against a slow, obviously-correct reading of the rules ---------------


def reference(pattern: str, arn: str) -> bool:
    """IAM's resource rules read literally: recursion over characters, no regular expressions."""
    if pattern == "*":
        return True

    @functools.cache
    def match(p: int, a: int) -> bool:
        if p == len(pattern):
            return a == len(arn)
        char = pattern[p]
        if char == "*":
            ends_segment = p + 1 == len(pattern) or pattern[p + 1] == ":"
            # Zero characters, or one more (a colon only when the * ends its segment).
            return match(p + 1, a) or (a < len(arn) and (arn[a] != ":" or ends_segment) and match(p, a + 1))
        if char == "?":
            return a < len(arn) and arn[a] != ":" and match(p + 1, a + 1)
        return a < len(arn) and arn[a] == char and match(p + 1, a + 1)

    return match(0, 0)


SEGMENT = st.text(alphabet="ab*?-", max_size=7)


@given(pattern=st.lists(SEGMENT, min_size=1, max_size=5).map(":".join),
       arn=st.lists(st.text(alphabet="ab-", max_size=6), min_size=1, max_size=5).map(":".join))
@settings(max_examples=3000, deadline=None)
def test_the_matcher_agrees_with_the_rules_read_literally(pattern: str, arn: str) -> None:
    assert resource_matches(pattern, arn) is reference(pattern, arn)

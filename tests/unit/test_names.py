"""Logical names map to every cloud deterministically and validly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsync.config.models import SECRET_NAME_RE
from cloudsync.config.names import check_remote_name, collision_key, translate


@pytest.mark.parametrize(
    ("logical", "provider", "remote"),
    [
        ("payments/db-password", "aws", "payments/db-password"),
        ("payments/db-password", "local", "payments/db-password"),
        ("payments/db-password", "gcp", "payments__db-password"),
        ("payments/db.password", "gcp", "payments__db_password"),
        ("payments/db_password", "azure", "payments--db-password"),
        ("payments/db.password", "azure", "payments--db-password"),
        ("a/b/c", "azure", "a--b--c"),
    ],
)
def test_translation_table(logical: str, provider: str, remote: str) -> None:
    assert translate(logical, provider) == remote


def test_azure_collisions_fold_case() -> None:
    assert collision_key("Payments-Key", "azure") == collision_key("payments-key", "azure")
    assert collision_key("Payments-Key", "gcp") != collision_key("payments-key", "gcp")


def test_invalid_remote_names_are_explained() -> None:
    assert check_remote_name("a" * 128, "azure") is not None
    assert check_remote_name("has_underscore", "azure") is not None
    assert check_remote_name("has.dot", "gcp") is not None
    assert check_remote_name("ok/name", "aws") is None


segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
logical_names = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(logical_names)
def test_every_logical_name_translates_to_a_valid_remote_name(name: str) -> None:
    assert SECRET_NAME_RE.match(name)
    for provider in ("aws", "gcp", "azure", "local"):
        remote = translate(name, provider)
        assert check_remote_name(remote, provider) is None, (name, provider, remote)
        assert translate(name, provider) == remote  # deterministic

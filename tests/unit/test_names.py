"""Logical names map to every cloud deterministically and validly, and back for import."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsync.config.models import SECRET_NAME_RE
from cloudsync.config.names import check_remote_name, collision_key, logical_name, translate
from cloudsync.diagnostics import CloudsyncError
from cloudsync.providers.registry import kinds, rules_for


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


@pytest.mark.parametrize(
    ("remote", "provider", "logical"),
    [
        ("payments/db-password", "aws", "payments/db-password"),
        ("payments/db-password", "local", "payments/db-password"),
        ("payments__db-password", "gcp", "payments/db-password"),
        ("payments__db_password", "gcp", "payments/db_password"),  # '.' folded into '_' is not recovered
        ("payments--db-password", "azure", "payments/db-password"),
        ("Payments--DB-Password", "azure", "Payments/DB-Password"),
    ],
)
def test_reverse_translation_table(remote: str, provider: str, logical: str) -> None:
    assert logical_name(remote, provider) == logical


def test_azure_collisions_fold_case() -> None:
    assert collision_key("Payments-Key", "azure") == collision_key("payments-key", "azure")
    assert collision_key("Payments-Key", "gcp") != collision_key("payments-key", "gcp")


def test_invalid_remote_names_are_explained() -> None:
    assert check_remote_name("a" * 128, "azure") is not None
    assert check_remote_name("has_underscore", "azure") is not None
    assert check_remote_name("has.dot", "gcp") is not None
    assert check_remote_name("ok/name", "aws") is None
    assert check_remote_name("a" * 513, "aws") == (
        f"remote name {'a' * 513!r} is not valid in aws: allowed are letters, digits and /_+=.@- (at most 512)")


def test_a_trailing_newline_is_not_a_valid_remote_name() -> None:
    for provider in kinds():
        assert check_remote_name("name\n", provider) is not None, provider


@pytest.mark.parametrize("call", [translate, logical_name, collision_key, check_remote_name])
def test_an_unknown_provider_is_an_error_never_aws_rules(call: object) -> None:
    with pytest.raises(CloudsyncError) as info:
        call("payments/db-password", "awz")  # type: ignore[operator]
    (diag,) = info.value.diagnostics
    assert diag.message == "no provider 'awz' is registered"
    assert diag.hint == "one of aws, gcp, azure, local"


segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)
logical_names = st.lists(segment, min_size=1, max_size=4).map("/".join)
plain_names = st.lists(st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=4).map("/".join)


@given(logical_names)
def test_every_logical_name_translates_to_a_valid_remote_name(name: str) -> None:
    assert SECRET_NAME_RE.match(name)
    for provider in kinds():
        remote = translate(name, provider)
        assert check_remote_name(remote, provider) is None, (name, provider, remote)
        assert translate(name, provider) == remote  # deterministic


@given(logical_names)
def test_a_logical_name_read_back_from_its_remote_name_maps_to_that_remote_name(name: str) -> None:
    # import writes a names: override only when this fails, so it must hold for every name cloudsync writes
    for provider in kinds():
        remote = translate(name, provider)
        assert translate(logical_name(remote, provider), provider) == remote, (name, provider)


@given(plain_names)
def test_names_of_letters_digits_and_slashes_round_trip_exactly(name: str) -> None:
    for provider in kinds():
        assert logical_name(translate(name, provider), provider) == name, provider


@pytest.mark.parametrize("provider", kinds())
@given(data=st.data())
def test_every_valid_remote_name_survives_the_way_back(provider: str, data: st.DataObject) -> None:
    rules = rules_for(provider)
    remote = data.draw(st.from_regex(rules.remote_names.pattern, fullmatch=True))
    assert rules.remote_name(rules.logical_name(remote)) == remote

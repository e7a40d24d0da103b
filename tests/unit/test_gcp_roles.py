"""Which roles let their members read a secret's value on GCP: known, asked, or neither (pure)."""

from __future__ import annotations

import pytest

from cloudsync.providers.gcp.roles import Definition, RoleBook, definition_of, needs_lookup, split_role


@pytest.mark.parametrize(("role", "expected"), [
    ("roles/secretmanager.secretAccessor", ("roles/secretmanager.secretAccessor", False)),
    ("roles/secretmanager.secretAccessor_withcond_2b17cc25d2cd9e2c54d8", ("roles/secretmanager.secretAccessor", True)),
    ("projects/p/roles/reader_withcond_00ff", ("projects/p/roles/reader", True)),
    ("roles/withcond_notahash", ("roles/withcond_notahash", False)),
])
def test_a_version_1_policy_hides_a_condition_in_the_role_name(role: str, expected: tuple[str, bool]) -> None:
    assert split_role(role) == expected


@pytest.mark.parametrize(("role", "asked"), [
    ("roles/secretmanager.secretAccessor", False),  # known: reads
    ("roles/viewer", False),  # known: does not
    ("roles/owner", True),  # basic roles: IAM decides
    ("roles/editor", True),
    ("roles/secretmanager.someNewRole", True),  # a Secret Manager role this table does not know yet
    ("projects/acme-prod/roles/reader", True),
    ("organizations/1/roles/reader", True),
    ("roles/storage.admin", False),  # another product's role: taken not to read secrets
])
def test_which_roles_are_asked_of_iam(role: str, asked: bool) -> None:
    assert needs_lookup(role) is asked


def test_each_role_is_looked_up_once_and_a_failure_stays_unknown() -> None:
    asked: list[str] = []

    def lookup(role: str) -> Definition:
        asked.append(role)
        return Definition(None, "denied") if role == "roles/owner" else Definition(True)

    book = RoleBook(lookup)
    book.learn(["projects/p/roles/r", "projects/p/roles/r_withcond_ab12", "roles/owner", "roles/viewer"])
    assert book.definition("projects/p/roles/r").grants is True
    assert book.definition("roles/owner") == Definition(None, "denied")
    assert book.definition("roles/secretmanager.admin").grants is True
    assert book.definition("roles/storage.admin").grants is False
    assert asked == ["projects/p/roles/r", "roles/owner"]
    assert RoleBook(None).definition("roles/owner").grants is None  # a scan that makes no call knows nothing more


def test_a_disabled_or_deleted_role_grants_nothing() -> None:
    permissions = ["secretmanager.versions.access"]
    assert definition_of(permissions, disabled=False, deleted=False).grants is True
    assert definition_of(permissions, disabled=True, deleted=False).grants is False
    assert definition_of(permissions, disabled=False, deleted=True).grants is False
    assert definition_of(["secretmanager.versions.get"], disabled=False, deleted=False).grants is False

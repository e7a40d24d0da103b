"""The local provider refuses writes to secrets its stack does not own (see tests/providers/ownership.py)."""

from __future__ import annotations

from pathlib import Path

from cloudsync.providers.base import ProviderContext
from cloudsync.providers.local import LocalProvider, LocalStore
from cloudsync.providers.local_rules import LocalTarget
from cloudsync.values.secret import SecretValue
from tests.providers.ownership import (
    UNOWNED,
    UNOWNED_VALUE,
    assert_foreign_secrets_refused,
    assert_unmanaged_secret_can_be_adopted,
    create_foreign,
)


def _provider(root: Path, stack: str) -> LocalProvider:
    return LocalProvider("local", LocalTarget(provider="local"), ProviderContext(stack=stack, root=root))


def test_update_restore_delete_of_unowned_or_other_stack_secrets_are_refused(tmp_path: Path, canary: str) -> None:
    ours, theirs = _provider(tmp_path, "payments"), _provider(tmp_path, "billing")
    try:
        create_foreign(theirs)
        LocalStore(tmp_path / ".cloudsync" / "local.db").put_value(UNOWNED, SecretValue(UNOWNED_VALUE),
                                                                  labels={"team": "legacy"})
        assert_foreign_secrets_refused(ours, canary)
        assert_unmanaged_secret_can_be_adopted(ours)
    finally:
        ours.close()
        theirs.close()

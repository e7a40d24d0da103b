"""Whether an Azure role lets its holders read a Key Vault secret's value, from its definition.

A role reads a secret when one of its permission blocks has a ``dataActions`` entry matching
``Microsoft.KeyVault/vaults/secrets/getSecret/action`` and no ``notDataActions`` entry of that
block matching it too (Azure subtracts ``notDataActions`` from the ``dataActions`` of the same
block; the blocks add up). Matching is Azure's: case-insensitive, ``*`` standing for any run
of characters, slashes included. So Key Vault Secrets User, Secrets Officer
(``.../secrets/*``), Administrator (``Microsoft.KeyVault/vaults/*``) and Certificate User read
by their definitions, as does any custom role with such data actions; Key Vault Reader
(``Microsoft.KeyVault/vaults/*/read``) does not, nor do Owner, Contributor and Reader, whose
``actions`` are control-plane only (they can change who reads, which the docs say).

Pure: no SDK, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"  # noqa: S105 - an action name
MAX_PATTERNS = 2_000  # data actions per role read; a definition is Azure's, but a bound costs nothing


def action_matches(pattern: str, action: str) -> bool:
    """Azure's wildcard match of one (data) action pattern against an action, in linear time."""
    pattern, action = pattern.strip().lower(), action.lower()
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == action
    first, *middle, last = parts
    if not action.startswith(first):
        return False
    position = len(first)
    for part in middle:  # leftmost match of each piece is always safe with `*` as the only wildcard
        found = action.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return len(action) - position >= len(last) and action.endswith(last)


@dataclass(frozen=True)
class PermissionBlock:
    """One entry of a role definition's ``permissions``."""

    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allowing(self, action: str) -> str | None:
        """The data action pattern that grants ``action``, or None when this block does not."""
        granted = next((p for p in self.data_actions if action_matches(p, action)), None)
        if granted is None or any(action_matches(p, action) for p in self.not_data_actions):
            return None
        return granted


@dataclass(frozen=True)
class RoleDefinition:
    """What cloudsync needs of a role definition: its name and its data-plane permissions."""

    guid: str  # lowercase
    name: str
    permissions: tuple[PermissionBlock, ...] = ()

    def allowing(self, action: str) -> str | None:
        """The data action pattern through which this role grants ``action`` (None: it does not)."""
        return next((found for block in self.permissions if (found := block.allowing(action)) is not None), None)

    @property
    def reads_secrets(self) -> str | None:
        return self.allowing(GET_SECRET)


def _strings(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in list(values or [])[:MAX_PATTERNS])


def role_definition(guid: str, sdk_role: Any) -> RoleDefinition:
    """A :class:`RoleDefinition` from ``azure-mgmt-authorization``'s ``RoleDefinition`` model."""
    blocks = tuple(PermissionBlock(_strings(getattr(p, "data_actions", None)), _strings(getattr(p, "not_data_actions", None)))
                   for p in list(getattr(sdk_role, "permissions", None) or [])[:MAX_PATTERNS])
    return RoleDefinition(guid.lower(), str(getattr(sdk_role, "role_name", None) or f"role {guid}"), blocks)


def _built_in(guid: str, name: str, *data_actions: str) -> RoleDefinition:
    return RoleDefinition(guid, name, (PermissionBlock(tuple(data_actions)),) if data_actions else ())


_KV = "Microsoft.KeyVault/vaults/"
# Azure's built-in roles have fixed GUIDs in every tenant and definitions Microsoft publishes
# ("Azure built-in roles", Security and General categories, checked 2026-11): their data actions
# are known without a *Role Definitions - Get*. Only the roles a vault's assignments commonly
# carry are here; any other id (custom roles, other built-ins) is still read from ARM.
BUILT_IN: dict[str, RoleDefinition] = {role.guid: role for role in (
    _built_in("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User",
              GET_SECRET, _KV + "secrets/readMetadata/action"),
    _built_in("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer", _KV + "secrets/*"),
    _built_in("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator", _KV + "*"),
    _built_in("db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", "Key Vault Certificate User", _KV + "certificates/read",
              GET_SECRET, _KV + "secrets/readMetadata/action", _KV + "keys/read"),
    _built_in("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader", _KV + "*/read",
              _KV + "secrets/readMetadata/action"),
    # Control-plane roles: no data actions (they can grant themselves reads, which the docs say).
    _built_in("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner"),
    _built_in("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
    _built_in("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
)}

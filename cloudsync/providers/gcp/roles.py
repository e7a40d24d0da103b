"""Which IAM roles let their members read a secret's value (``secretmanager.versions.access``).

Three kinds of role name appear in a policy binding:

- predefined roles whose permissions the Secret Manager access-control reference lists:
  known here, no call;
- the basic roles ``roles/owner`` and ``roles/editor``, and any other ``roles/secretmanager.*``
  role: asked of IAM (``GetRole``), because public reports disagree with the obvious
  assumption (an Editor was refused ``secretmanager.versions.access``,
  GoogleCloudPlatform/k8s-config-connector#711) and Secret Manager gains roles over time —
  a wrong guess here would either flag every project's default service account or hide a
  reader, so the cloud decides;
- custom roles (``projects/P/roles/R``, ``organizations/O/roles/R``): asked of IAM.

Every lookup is made once per role per scan, however many bindings or secrets name it.
Other predefined roles (service agents, other products) are taken not to carry the
permission; the provider docs say so.

A policy read as version 1 hides conditions by renaming the role
(``roles/x_withcond_<hash>``); :func:`split_role` recognises that form, so such a binding is
still evaluated and reported as conditional.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

ACCESS_PERMISSION = "secretmanager.versions.access"

# Checked against the Secret Manager roles reference (cloud.google.com/iam/docs/roles-permissions/secretmanager).
KNOWN: Mapping[str, bool] = {
    "roles/secretmanager.secretAccessor": True,
    "roles/secretmanager.admin": True,  # secretmanager.*
    "roles/secretmanager.viewer": False,  # metadata only
    "roles/secretmanager.secretVersionAdder": False,
    "roles/secretmanager.secretVersionManager": False,  # add, enable, disable, destroy; never access
    "roles/viewer": False,
}
ASKED = frozenset({"roles/owner", "roles/editor"})
_CUSTOM = re.compile(r"^(projects|organizations)/[^/]+/roles/[^/]+$")
_WITHCOND = re.compile(r"^(?P<role>.+)_withcond_[0-9a-f]+$")


def split_role(role: str) -> tuple[str, bool]:
    """``(role, hidden_condition)``: the role a ``_withcond_`` name stands for, and whether it was one."""
    found = _WITHCOND.match(role)
    return (found["role"], True) if found else (role, False)


def is_custom(role: str) -> bool:
    return _CUSTOM.match(role) is not None


def needs_lookup(role: str) -> bool:
    """Whether IAM is asked what ``role`` holds (else the answer is :data:`KNOWN`, or no)."""
    if role in KNOWN:
        return False
    return role in ASKED or role.startswith("roles/secretmanager.") or is_custom(role)


@dataclass(frozen=True)
class Definition:
    """What IAM said about a role: whether its members can read values, or why that is unknown."""

    grants: bool | None  # None: unknown (the lookup failed)
    reason: str = ""  # why unknown, for the report


# A lookup returns the role's definition, or raises nothing: failures come back as Definition(None, why).
Lookup = Callable[[str], Definition]


class RoleBook:
    """Role name -> whether it lets its members read secret values; one lookup per distinct role."""

    def __init__(self, lookup: Lookup | None) -> None:
        self._lookup = lookup  # None: make no call (the scan is off), roles that need one stay unknown
        self._seen: dict[str, Definition] = {}

    def learn(self, roles: Iterable[str]) -> None:
        """Look up, once each, the roles among ``roles`` that need it."""
        for role in roles:
            base, _ = split_role(role)
            if base not in self._seen and needs_lookup(base):
                self._seen[base] = self._lookup(base) if self._lookup else Definition(None, "not looked up")

    def definition(self, role: str) -> Definition:
        base, _ = split_role(role)
        if base in KNOWN:
            return Definition(KNOWN[base])
        if not needs_lookup(base):
            return Definition(False)
        self.learn([base])
        return self._seen[base]


def definition_of(included_permissions: Iterable[str], *, disabled: bool, deleted: bool) -> Definition:
    """A role as IAM returned it. A disabled or deleted role grants nothing while it stays so."""
    if disabled or deleted:
        return Definition(False)
    return Definition(ACCESS_PERMISSION in set(included_permissions))

"""A provider's rules: what the core must know about a cloud without talking to it.

Each provider keeps one :class:`ProviderRules` object in its own ``rules`` module: the
target model of ``provider: <kind>``, the key a principal's id in that cloud is declared
under, how a logical name becomes a remote name and back, which remote names the cloud
accepts, and which descriptions it can store. The core asks the registry
(:func:`cloudsync.providers.registry.rules_for`) and never names a cloud itself.

A rules module imports no cloud SDK: ``--help``, ``validate`` and local-only runs load
every provider's rules, and none of their SDKs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from cloudsync.config.fields import Labels, Strict

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from cloudsync.config.models import Principal


class TargetModel(Strict):
    """What every target has, whatever its provider: its kind, and labels for policies.

    A provider's target model subclasses it and narrows ``provider`` to its kind with a
    ``Literal``, which is the tag the stack file's target union is discriminated by.
    """

    provider: str
    labels: Labels = Field(default_factory=dict, description="e.g. {env: prod}, read by policies")


@dataclass(frozen=True)
class RemoteNames:
    """The remote names a cloud accepts."""

    pattern: re.Pattern[str]  # matched against the whole name
    allowed: str  # the same rule, for a person: "letters, digits and '-' (at most 127)"
    case_insensitive: bool = False  # the cloud treats "Key" and "key" as one secret


# The longest principal id any cloud takes (an IAM ARN is at most 2,048 characters). The bound
# keeps a hostile id from being quoted at full length in every message and report about it.
PRINCIPAL_ID_MAX = 2048


def id_field(description: str, *, pattern: str | None = None) -> Any:
    """The ``principals.<name>.<kind>`` key of a provider: optional, one id in that cloud."""
    return Field(None, description=description, pattern=pattern, max_length=PRINCIPAL_ID_MAX)


class ProviderRules:
    """One cloud's rules. Subclass it in ``providers/<kind>/rules.py``; override what differs.

    The defaults fit a cloud that takes logical names as they are and stores descriptions
    of any length the stack file allows.
    """

    kind: ClassVar[str]
    config_model: ClassVar[type[TargetModel]]
    principal_field: ClassVar[FieldInfo]  # the principals.<name>.<kind> key, made with id_field()
    remote_names: ClassVar[RemoteNames]
    # The cloud records when a secret was last read (AWS LastAccessedDate): an access report
    # can then name declared readers that never use their grant.
    tracks_last_access: ClassVar[bool] = False

    def remote_name(self, logical: str) -> str:
        """The remote name of a logical name (before any per-target override)."""
        return logical

    def logical_name(self, remote: str) -> str:
        """Best-effort inverse of :meth:`remote_name`, for import.

        Folded characters cannot be recovered, but the result always maps back onto
        ``remote`` when it is a valid logical name: ``remote_name(logical_name(r)) == r``.
        """
        return remote

    def collision_key(self, remote: str) -> str:
        """The form under which two remote names are one secret in this cloud."""
        return remote.casefold() if self.remote_names.case_insensitive else remote

    def check_remote_name(self, remote: str) -> str | None:
        """A readable problem with ``remote`` in this cloud, or None when it is valid."""
        if self.remote_names.pattern.fullmatch(remote):
            return None
        return f"remote name {remote!r} is not valid in {self.kind}: allowed are {self.remote_names.allowed}"

    def check_description(self, description: str) -> str | None:
        """A readable problem with storing ``description`` in this cloud, or None."""
        return None

    def principal_id(self, principal: Principal, name: str) -> str | None:
        """The id of principal ``name`` in this cloud; None when it declares none."""
        ident: str | None = getattr(principal, self.kind)
        return ident

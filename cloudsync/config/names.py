"""Remote names: the core's questions about names, answered by each provider's rules.

Every provider translates a logical name to its remote name deterministically, and back
as well as it can (for import); the rules and the translation table live with the provider
(``providers/<kind>/rules.py``) and are documented in docs/configuration.md. A declaration
may override the result per target (``names: {target: remote-name}``); the override must
be valid for that cloud. Because the rules fold some characters together (``a_b`` and
``a.b`` are both ``a_b`` in GCP), two declarations that land on one remote name are a
validation error naming both; a cloud with case-insensitive names compares them folded.

An unknown provider is an error (:func:`cloudsync.providers.registry.rules_for`), never
another cloud's rules.
"""

from __future__ import annotations

from cloudsync.providers.registry import rules_for


def translate(logical: str, provider: str) -> str:
    """The remote name of ``logical`` in a target of ``provider`` (no override applied)."""
    return rules_for(provider).remote_name(logical)


def logical_name(remote: str, provider: str) -> str:
    """Best-effort logical name of a remote name found in a target of ``provider``."""
    return rules_for(provider).logical_name(remote)


def collision_key(remote: str, provider: str) -> str:
    """The form under which two remote names are the same secret in that cloud."""
    return rules_for(provider).collision_key(remote)


def check_remote_name(remote: str, provider: str) -> str | None:
    """A readable problem with ``remote`` in ``provider``, or None when it is valid."""
    return rules_for(provider).check_remote_name(remote)

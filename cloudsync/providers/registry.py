"""The explicit registry of providers: one line per provider.

Each line names the provider's rules module (what the core must know about the cloud:
see :mod:`cloudsync.providers.rules`) and its adapter class. Rules modules import no SDK;
an adapter is imported only when a target of its kind is used, so ``--help``, ``validate``
and local-only runs never import a cloud SDK. The order of the lines is the order in which
the providers appear in the stack file's schema and in policy documents.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, NamedTuple

from cloudsync.diagnostics import CloudsyncError, Diagnostic

if TYPE_CHECKING:
    from cloudsync.providers.base import Provider
    from cloudsync.providers.rules import ProviderRules


class Registration(NamedTuple):
    rules: str  # module holding RULES, a ProviderRules (imports no SDK)
    module: str  # module exporting the adapter class (imports the SDK)
    class_name: str
    extra: str | None  # the install extra that brings the SDK (cloudsync-secrets[<extra>], the distribution name on PyPI)


ADAPTERS: dict[str, Registration] = {
    "aws": Registration("cloudsync.providers.aws.rules", "cloudsync.providers.aws", "AwsProvider", "aws"),
    "gcp": Registration("cloudsync.providers.gcp.rules", "cloudsync.providers.gcp", "GcpProvider", "gcp"),
    "azure": Registration("cloudsync.providers.azure.rules", "cloudsync.providers.azure", "AzureProvider", "azure"),
    "local": Registration("cloudsync.providers.local_rules", "cloudsync.providers.local", "LocalProvider", None),
}


def kinds() -> tuple[str, ...]:
    """Every registered provider kind, in registry order."""
    return tuple(ADAPTERS)


def unknown_provider(kind: str) -> Diagnostic:
    return Diagnostic(f"no provider {kind!r} is registered", hint=f"one of {', '.join(ADAPTERS)}")


def _registration(kind: str) -> Registration:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise CloudsyncError(unknown_provider(kind)) from None


def rules_for(kind: str) -> ProviderRules:
    """The rules of provider ``kind``; an unknown kind is an error, never another cloud's rules."""
    rules = _RULES.get(kind)
    if rules is None:  # looked up per secret and target: the import machinery only once per kind
        rules = _RULES[kind] = importlib.import_module(_registration(kind).rules).RULES
    return rules


_RULES: dict[str, ProviderRules] = {}


def all_rules() -> list[ProviderRules]:
    """The rules of every registered provider, in registry order."""
    return [rules_for(kind) for kind in ADAPTERS]


def provider_class(kind: str) -> type[Provider[object]]:
    """The adapter class for ``kind``; a missing SDK is a diagnostic naming the extra."""
    _rules, module_name, class_name, extra = _registration(kind)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").startswith("cloudsync"):
            raise CloudsyncError(Diagnostic(
                f"the {kind} provider is not available in this build ({exc.name} is missing)")) from None
        raise CloudsyncError(Diagnostic(
            f"the {kind} provider needs {exc.name}, which is not installed",
            hint=f"pip install 'cloudsync-secrets[{extra}]'")) from None
    cls: type[Provider[object]] = getattr(module, class_name)
    return cls

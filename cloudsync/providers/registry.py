"""The explicit registry of provider adapters.

Adapters are named here by module path and imported only when a target of their kind is
used, so ``--help``, ``validate`` and local-only runs never import a cloud SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cloudsync.diagnostics import CloudsyncError, Diagnostic

if TYPE_CHECKING:
    from cloudsync.providers.base import Provider

# kind -> (module, class, install extra)
ADAPTERS: dict[str, tuple[str, str, str | None]] = {
    "local": ("cloudsync.providers.local", "LocalProvider", None),
    "aws": ("cloudsync.providers.aws", "AwsProvider", "aws"),
    "gcp": ("cloudsync.providers.gcp", "GcpProvider", "gcp"),
    "azure": ("cloudsync.providers.azure", "AzureProvider", "azure"),
}


def provider_class(kind: str) -> type[Provider[object]]:
    """The adapter class for ``kind``; a missing SDK is a diagnostic naming the extra."""
    try:
        module_name, class_name, extra = ADAPTERS[kind]
    except KeyError:
        raise CloudsyncError(Diagnostic(f"no provider adapter for {kind!r}")) from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").startswith("cloudsync"):
            raise CloudsyncError(Diagnostic(
                f"the {kind} provider is not available in this build ({exc.name} is missing)")) from None
        raise CloudsyncError(Diagnostic(
            f"the {kind} provider needs {exc.name}, which is not installed",
            hint=f"pip install 'cloudsync[{extra}]'")) from None
    cls: type[Provider[object]] = getattr(module, class_name)
    return cls

"""Policy as code: CEL policies over the desired and planned state, waivers, policy tests.

The public API is exactly ``__all__``: :func:`evaluate` a stack (optionally with its
plan run) into a :class:`PolicyReport`; only un-waived ``error`` violations block.
Names are imported on first use, so ``cloudsync --help`` does not load the CEL runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudsync.policy.document import INPUT_VERSION, input_schema
    from cloudsync.policy.engine import evaluate
    from cloudsync.policy.loader import builtin_dir
    from cloudsync.policy.model import Policy, PolicyReport, Violation, Waiver

_WHERE = {
    "INPUT_VERSION": "cloudsync.policy.document",
    "input_schema": "cloudsync.policy.document",
    "evaluate": "cloudsync.policy.engine",
    "builtin_dir": "cloudsync.policy.loader",
    "Policy": "cloudsync.policy.model",
    "PolicyReport": "cloudsync.policy.model",
    "Violation": "cloudsync.policy.model",
    "Waiver": "cloudsync.policy.model",
}

__all__ = [
    "INPUT_VERSION",
    "Policy",
    "PolicyReport",
    "Violation",
    "Waiver",
    "builtin_dir",
    "evaluate",
    "input_schema",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'cloudsync.policy' has no attribute {name!r}")

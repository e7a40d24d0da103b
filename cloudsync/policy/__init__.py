"""Policy as code: CEL policies over the desired and planned state, waivers, policy tests.

The public API is exactly ``__all__``: :func:`evaluate` a stack (optionally with its
plan run) into a :class:`PolicyReport`; only un-waived ``error`` violations block.
"""

from cloudsync.policy.document import INPUT_VERSION, input_schema
from cloudsync.policy.engine import evaluate
from cloudsync.policy.loader import builtin_dir
from cloudsync.policy.model import Policy, PolicyReport, Violation, Waiver

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

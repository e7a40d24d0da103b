"""Shared settings of the fuzz suite: how many cases, and what they cost.

Every fuzz test decorates itself with :data:`FUZZ` (a hypothesis ``settings`` object), so
one environment variable scales the whole suite:

- ``CLOUDSYNC_FUZZ_EXAMPLES`` (default 50): examples per in-process fuzz test. CI keeps
  the default (a few seconds in all); ``benchmarks/fuzz.py`` runs 20,000 and more.
- :data:`CLI_EXAMPLES` — examples of a test that runs the CLI in a subprocess — is derived
  from it (one in 50, at least 3), since each costs a Python start;
  ``CLOUDSYNC_FUZZ_CLI_EXAMPLES`` sets it directly.
- Each case is counted with :func:`tests.fuzz.figures.timed`; the run ends with the cases
  tried per test, and ``CLOUDSYNC_FUZZ_STATS=FILE`` writes them as JSON (see figures.py).

A case the fuzzer finds is kept as a regression fixture (``regressions/``), so it runs on
every CI run whatever the random draw.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLES = max(1, int(os.environ.get("CLOUDSYNC_FUZZ_EXAMPLES", "50")))
_CLI = os.environ.get("CLOUDSYNC_FUZZ_CLI_EXAMPLES")
CLI_EXAMPLES = max(1, int(_CLI)) if _CLI else max(3, EXAMPLES // 50)
CASE_SECONDS = 10.0
"""No case may take longer (the issue's bound for a hang); hypothesis fails a slower one."""

_COMMON = {
    "deadline": timedelta(seconds=CASE_SECONDS),
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                              HealthCheck.function_scoped_fixture],
    "print_blob": True,  # a failure prints the @reproduce_failure line to replay it
}
settings.register_profile("cloudsync-fuzz", max_examples=EXAMPLES, **_COMMON)
settings.register_profile("cloudsync-fuzz-cli", max_examples=CLI_EXAMPLES, **_COMMON)
FUZZ = settings.get_profile("cloudsync-fuzz")
FUZZ_CLI = settings.get_profile("cloudsync-fuzz-cli")

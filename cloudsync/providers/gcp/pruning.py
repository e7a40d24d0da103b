"""Which old versions a value write disables (``keep_versions``), and the record that proves
cloudsync wrote them.

Secret Manager versions carry no labels: nothing on a version says who wrote it. So
cloudsync keeps its own list in the secret's annotation ``cloudsync-versions`` — the
versions it wrote and still keeps, as number ranges (``"4-6,9"``) — and ``keep_versions``
counts and disables only versions on that list (plus the two its labels name:
``cloudsync-version`` and the one ``cloudsync-retire`` waits to retire). A version anyone
else added (a console edit, an external rotator, an incident responder) is not on it and
stays as it is, however old. The list is rewritten with every value write, in the same
``UpdateSecret`` as the labels, so it costs no call of its own.

Bounds: the annotation is read only up to :data:`MAX_CHARS` characters and
:data:`MAX_RECORDED` versions (a hand-edited ``1-999999999`` is ignored, not expanded);
anything malformed is read as an empty list, which means "prove nothing": pruning then
disables nothing the labels do not name. When the list would outgrow the bound, its oldest
versions are forgotten — they stay enabled, the safe way to fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cloudsync.providers.base import decode_meta

VERSIONS_KEY = "cloudsync-versions"
MAX_CHARS = 4000  # with a 2,048-character description, far below GCP's 16 KiB of annotations
MAX_RECORDED = 2000  # keep_versions is at most 1,000


def decode(text: str | None) -> frozenset[int]:
    """The version numbers an annotation names; empty for anything malformed or too large."""
    if not text or len(text) > MAX_CHARS:
        return frozenset()
    numbers: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or not (high or low).isdigit() or len(low) > 12 or len(high) > 12:
            return frozenset()
        first, last = int(low), int(high or low)
        if first < 1 or last < first or len(numbers) + last - first + 1 > MAX_RECORDED:
            return frozenset()
        numbers.update(range(first, last + 1))
    return frozenset(numbers)


def encode(numbers: Iterable[int]) -> str:
    """Ascending ranges, ``"1-3,7"``; the oldest versions are left out when it would exceed the bound."""
    newest = sorted(set(numbers), reverse=True)[:MAX_RECORDED]
    while True:
        runs: list[list[int]] = []
        for number in sorted(newest):
            if runs and number == runs[-1][1] + 1:
                runs[-1][1] = number
            else:
                runs.append([number, number])
        text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        if len(text) <= MAX_CHARS:
            return text
        newest = newest[:-1]  # forget the oldest: it stays enabled, never wrongly disabled


@dataclass(frozen=True)
class Pruning:
    """The outcome of one value write for ``keep_versions``."""

    kept: frozenset[int]  # cloudsync's versions still kept: the newest ``keep_versions``, and one awaiting retirement
    beyond: tuple[int, ...]  # cloudsync's older versions, newest first: disabled if still enabled


def written_by_cloudsync(labels: Mapping[str, str], annotations: Mapping[str, str]) -> frozenset[int]:
    """Every version the secret's own metadata names as written by cloudsync."""
    numbers = set(decode(annotations.get(VERSIONS_KEY)))
    record = decode_meta(labels).record
    if record is not None:
        for version in (record.version, record.retire.version if record.retire else None):
            if version is not None and version.isdigit():
                numbers.add(int(version))
    return frozenset(numbers)


def plan_pruning(ours: frozenset[int], written: int, keep: int, awaiting_retirement: str | None) -> Pruning:
    """Keep the newest ``keep`` of cloudsync's versions up to ``written`` (the one just written,
    always kept); the version awaiting retirement is left to its own change when its grace ends."""
    mine = sorted({n for n in ours if n <= written} | {written}, reverse=True)
    spared = {int(awaiting_retirement)} if awaiting_retirement and awaiting_retirement.isdigit() else set()
    kept = set(mine[:keep]) | (spared & set(mine))
    return Pruning(kept=frozenset(kept), beyond=tuple(n for n in mine[keep:] if n not in kept))

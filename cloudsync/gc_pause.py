"""Pause Python's cyclic garbage collector around bursts of allocation.

Loading, planning and building policy documents allocate hundreds of thousands of small
dicts, lists and models that all stay alive until the phase ends. Each burst of
allocations triggers collections that walk the whole heap (the loaded stack included) and
find nothing to free: about a sixth of the CPU of a 10,000-secret plan. These phases make
no reference cycles of their own, so reference counting frees their temporaries; anything
cyclic is still collected once the collector runs again.

Re-enabled, the collector would still walk every object the burst left alive, since they
are all in its youngest generation (~0.2 s of CPU over a 10,000-secret plan). A process that
runs one command and exits (the CLI, see :func:`freeze_survivors`) moves them out of its
reach instead: they live until the command ends anyway.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_freeze = False


def freeze_survivors() -> None:
    """From now on, what is alive when a pause ends is never walked by the collector again.

    For a process that ends after one command: an object kept that way is still freed when
    its last reference goes; only a reference cycle among them stays until the process ends.
    """
    global _freeze
    _freeze = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; its previous state is restored afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if _freeze:
                gc.freeze()
            gc.enable()

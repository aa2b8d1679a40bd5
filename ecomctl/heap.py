"""The garbage collector of a process that runs the shop.

A built shop holds a large, long-lived heap (pools, caches, the ASGI app, pydantic models,
the instrumentations). CPython's cyclic collector walks it again and again while requests
allocate short-lived objects: under load that was ~13% of a serving process's samples
(py-spy, ``gc_collect_main`` under span creation). Freezing the heap once the shop is
built moves it out of the collector's generations (the Instagram recipe), so collections
only look at what requests create; thawing it at shutdown lets a process that builds
several shops (the tests) reclaim the earlier ones.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then freeze what exists now; thaw on exit."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()

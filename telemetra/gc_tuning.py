"""Garbage collector settings for a long-running Telemetra process (``serve``, ``worker``).

Ingest allocates tens of thousands of short-lived objects per batch (messages, points, rows), none of
them in reference cycles. With CPython's default threshold (a collection every 700 allocations) the
collector runs hundreds of times a second and keeps walking the long-lived objects (rule windows,
caches): measured on batches of 5,000 points with 10 rules, rule evaluation took about twice as long.
So: what exists at start is frozen (never walked again), and a collection runs only after 500,000 more
objects were allocated than freed.

That count has to stay above what is alive at once while batches are in flight (a full ingest queue holds
20,000 messages, about ten objects each): a collection walks every young object still alive and moves it
to an older generation, to be walked again there. At 50,000, the 1,000-message batches waiting for rule
evaluation tripped a collection about three times a second, each 25-35 ms: in the benchmark's rules case
the collector took 0.8-1.1 s of a 12 s run, against 0.05 s at 200,000 or more.
Cycles are still collected; memory stays bounded (the benchmark watches peak RSS).
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]

ALLOCATIONS_PER_COLLECTION = 500_000


def tune_gc() -> None:
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(ALLOCATIONS_PER_COLLECTION, older, oldest)

"""The sealer keeps the seal mark its lag behind the clock, an hour at most per call."""

from __future__ import annotations

from datetime import timedelta

from telemetra.domain.timeparse import utcnow
from telemetra.ingest.sealer import MAX_SLICE, RollupSealer
from telemetra.store import Store


async def _mark(store: Store):
    _, mark, _ = await store.seal_rollups(utcnow() - timedelta(days=365))  # never moves the mark back
    return mark


async def test_the_mark_follows_the_clock_at_the_lag(store: Store) -> None:
    sealer = RollupSealer(store, lag_s=30)
    start = await _mark(store)
    calls = 1
    while await sealer.seal_once():
        calls += 1
        assert await _mark(store) - start <= calls * MAX_SLICE
    behind = utcnow() - await _mark(store)
    assert timedelta(seconds=30) <= behind < timedelta(seconds=40)
    assert calls == -(-(utcnow() - timedelta(seconds=30) - start) // MAX_SLICE)  # whole slices, then the rest

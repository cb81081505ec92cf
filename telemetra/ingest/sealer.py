"""The rollup sealer: every few seconds, adds the statistics of the points written since the last time to
the hourly rollups in one set-based statement (``Store.seal_rollups``), so that a batch does not rewrite a
statistics row per point it writes. See ``store.rollups`` for what the seal mark means to readers.

Every process runs one; the store serialises them (and the batches) with a lock, so two sealers never
add the same slice. The mark stays ``lag_s`` behind the clock: a point older than that when it arrives
is merged by its own batch instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from telemetra.domain.timeparse import utcnow
from telemetra.ingest import metrics
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["RollupSealer"]

# Small slices keep the lock short: the batches wait for it. A process that was down catches up an hour
# at a time, each call right after the previous one.
MAX_SLICE = timedelta(hours=1)


class RollupSealer:
    def __init__(self, store: Store, *, lag_s: float, interval_s: float | None = None) -> None:
        self._store = store
        self.lag = timedelta(seconds=lag_s)
        self.interval_s = interval_s if interval_s is not None else min(10.0, lag_s / 4)

    async def seal_once(self) -> bool:
        """Seal up to ``lag`` before now (one slice at most); tell whether there is more to seal."""
        until = utcnow() - self.lag
        started = time.perf_counter()
        start, end, rows = await self._store.seal_rollups(until, MAX_SLICE)
        if end > start:
            metrics.SEAL_SECONDS.observe(time.perf_counter() - started)
            metrics.SEALED_ROWS.inc(rows)
            logger.debug("rollups sealed from %s to %s: %d rows", start.isoformat(), end.isoformat(), rows)
        return end < until and end > start

    async def run(self) -> None:
        while True:
            try:
                more = await self.seal_once()
            except Exception:
                logger.warning("sealing the rollups failed; will retry", exc_info=True)
                more = False
            if not more:
                await asyncio.sleep(self.interval_s)

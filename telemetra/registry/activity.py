"""Key usage and device last-seen times, buffered in memory and flushed in one transaction.

Writing a usage count on every request would double the writes of the hot path (seed 002's original
code committed twice per request); a flush every few seconds costs one small transaction instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["ActivityRecorder"]

# Past this many distinct keys or devices between flushes, flush early rather than grow without bound.
MAX_PENDING_ENTRIES = 50_000


class ActivityRecorder:
    """Collect key usage and device activity; ``flush`` writes them."""

    def __init__(self, store: Store, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._keys: dict[int, tuple[int, datetime]] = {}
        self._devices: dict[int, datetime] = {}
        self._task: asyncio.Task | None = None
        self._flush_lock = asyncio.Lock()

    def key_used(self, key_id: int, at: datetime) -> None:
        count, _ = self._keys.get(key_id, (0, at))
        self._keys[key_id] = (count + 1, at)
        self._maybe_flush_early()

    def device_seen(self, device_pk: int, at: datetime) -> None:
        self._devices[device_pk] = at
        self._maybe_flush_early()

    def _maybe_flush_early(self) -> None:
        if len(self._keys) + len(self._devices) >= MAX_PENDING_ENTRIES and not self._flush_lock.locked():
            asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Write what has accumulated; on failure keep it for the next attempt."""
        async with self._flush_lock:
            keys, devices = self._keys, self._devices
            self._keys, self._devices = {}, {}
            try:
                await self._store.record_activity(keys, devices)
            except Exception:
                logger.warning("key usage flush failed; will retry", exc_info=True)
                for key_id, (count, at) in keys.items():
                    old_count, _ = self._keys.get(key_id, (0, at))
                    self._keys[key_id] = (old_count + count, max(at, self._keys.get(key_id, (0, at))[1]))
                for pk, at in devices.items():
                    self._devices[pk] = max(at, self._devices.get(pk, at))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="activity-flush")

    async def stop(self) -> None:
        """Stop the timer and flush what is left."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()

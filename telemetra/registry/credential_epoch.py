"""Follow the database's credential epoch, so that a key revoked or a device changed through another process
stops being served from this process's authentication cache within about a second.

One single-row read per interval, whatever the number of keys; the cache is emptied only when the epoch moved.
"""

from __future__ import annotations

import asyncio
import logging
import time

from telemetra.registry.credential_cache import CredentialCache
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["CredentialEpochWatcher", "TRUSTED_INTERVALS"]

# The cache is served for this many intervals after a successful reading: one late or failed reading is
# forgiven, a stalled watcher is not (lookups then go to the database until the epoch is read again).
TRUSTED_INTERVALS = 3


class CredentialEpochWatcher:
    def __init__(self, store: Store, cache: CredentialCache, interval_s: float) -> None:
        self._store = store
        self._cache = cache
        self.interval_s = interval_s
        self._failing = False

    async def check(self) -> None:
        """Read the epoch once and hand it to the cache."""
        # Trust counts from before the query: the value read may be as old as the moment it was sent.
        started = time.monotonic()
        epoch = await self._store.credential_epoch()
        self._cache.epoch_read(epoch, started + TRUSTED_INTERVALS * self.interval_s)

    async def run(self) -> None:
        """Check every ``interval_s`` until cancelled."""
        while True:
            try:
                await self.check()
            except Exception:
                if not self._failing:
                    logger.warning(
                        "cannot read the credential epoch; keys are looked up at every request until "
                        "it can be read again",
                        exc_info=True,
                    )
                self._failing = True
            else:
                if self._failing:
                    logger.info("the credential epoch can be read again; authenticated keys are cached again")
                self._failing = False
            await asyncio.sleep(self.interval_s)

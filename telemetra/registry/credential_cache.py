"""Recently authenticated keys, so that a device sending every second does not cost two lookups a message,
and the devices that tenant keys' batches name, so that a batch of 1,000 messages does not read 1,000
devices back from the database.

An entry is kept ``ttl_s`` seconds at most. Whatever changes a key or a device in this process (revoke, rotate,
update, delete) empties the cache at once. A change made anywhere else (another process, the `telemetra`
command) moves the database's credential epoch in its own transaction; ``CredentialEpochWatcher`` reads it
about once a second and empties the cache when it moved. A cache that follows the epoch serves nothing while
the epoch has not been read recently, so a watcher that stalls (the database is slow or gone) can never let a
revoked key through: requests then look their key up. Expiry is checked on every request against the cached
key, so an expired key is refused on time.
"""

from __future__ import annotations

import math
import time

from telemetra.domain.models import ApiKey, Device

__all__ = ["CredentialCache"]

MAX_ENTRIES = 100_000  # about 1 KB each: the cache stays bounded whatever the number of keys


class CredentialCache:
    def __init__(self, ttl_s: float, *, follows_epoch: bool = False, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        # A plain dict in insertion order: the oldest entry is the first one, and a lookup is one dict access.
        self._entries: dict[bytes, tuple[float, ApiKey, Device | None]] = {}
        self._devices: dict[str, tuple[float, Device]] = {}  # by device id, the same way
        self._generation = 0
        self._epoch: int | None = None
        # Without an epoch to follow, only the TTL bounds an entry; with one, nothing is trusted before it is read.
        self._trusted_until = -math.inf if follows_epoch else math.inf

    @property
    def generation(self) -> int:
        """Moves at every clear: a lookup notes it before reading the database and hands it back to ``put``."""
        return self._generation

    def get(self, key_hash: bytes) -> tuple[ApiKey, Device | None] | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        now = time.monotonic()
        if entry[0] <= now or now > self._trusted_until:
            return None
        return entry[1], entry[2]

    def put(self, key_hash: bytes, key: ApiKey, device: Device | None, generation: int) -> None:
        """Keep what was read from the database while the cache was at ``generation``. A read that a clear
        overtook may predate the change that caused the clear: it is not kept."""
        if self.ttl_s <= 0 or generation != self._generation:
            return
        self._entries.pop(key_hash, None)  # a renewed entry becomes the newest
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = (time.monotonic() + self.ttl_s, key, device)

    def devices(self, device_ids: set[str]) -> tuple[dict[str, Device], list[str]]:
        """The cached devices among ``device_ids`` by id, and the ids to look up."""
        now = time.monotonic()
        if now > self._trusted_until:
            return {}, list(device_ids)
        found, missing, entries = {}, [], self._devices
        for device_id in device_ids:
            entry = entries.get(device_id)
            if entry is not None and entry[0] > now:
                found[device_id] = entry[1]
            else:
                missing.append(device_id)
        return found, missing

    def put_devices(self, devices: list[Device], generation: int) -> None:
        """Keep devices read from the database while the cache was at ``generation`` (as ``put``)."""
        if self.ttl_s <= 0 or generation != self._generation:
            return
        expires = time.monotonic() + self.ttl_s
        entries = self._devices
        for device in devices:
            entries.pop(device.id, None)
            if len(entries) >= self._max_entries:
                del entries[next(iter(entries))]
            entries[device.id] = (expires, device)

    def clear(self) -> None:
        """Forget every entry: called after a key or a device changed."""
        self._entries.clear()
        self._devices.clear()
        self._generation += 1

    def epoch_read(self, epoch: int, trusted_until: float) -> None:
        """The credential epoch as read from the database: empty the cache if it moved since the last reading
        (or if this is the first), and serve entries until ``trusted_until`` (``time.monotonic`` time)."""
        if epoch != self._epoch:
            self.clear()
            self._epoch = epoch
        self._trusted_until = trusted_until

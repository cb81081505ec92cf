"""Recently authenticated keys, so that a device sending every second does not cost two lookups a message.

An entry is kept ``ttl_s`` seconds at most. Whatever changes a key or a device in this process (revoke,
rotate, update, delete) empties the cache at once; another process's change is seen within ``ttl_s``.
Expiry is checked on every request against the cached key, so an expired key is refused on time.
"""

from __future__ import annotations

from cachetools import TTLCache

from telemetra.domain.models import ApiKey, Device

__all__ = ["CredentialCache"]

MAX_ENTRIES = 100_000  # about 1 KB each: the cache stays bounded whatever the number of keys


class CredentialCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: TTLCache[bytes, tuple[ApiKey, Device | None]] | None = (
            TTLCache(maxsize=MAX_ENTRIES, ttl=ttl_s) if ttl_s > 0 else None)

    def get(self, key_hash: bytes) -> tuple[ApiKey, Device | None] | None:
        return self._entries.get(key_hash) if self._entries is not None else None

    def put(self, key_hash: bytes, key: ApiKey, device: Device | None) -> None:
        if self._entries is not None:
            self._entries[key_hash] = (key, device)

    def clear(self) -> None:
        """Forget every entry: called after a key or a device changed."""
        if self._entries is not None:
            self._entries.clear()

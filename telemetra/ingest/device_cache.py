"""Device lookups for broker sources: a topic names a device id; resolving it must not cost a query per message."""

from __future__ import annotations

import time
from collections import OrderedDict

from telemetra.domain.models import Device
from telemetra.store import Store

__all__ = ["DeviceCache"]

# A device seen recently is trusted this long; a deleted device stops being accepted within it.
KNOWN_TTL_S = 30.0
# An unknown id is remembered briefly so that a flood for it does not hit the database per message,
# yet a device registered just now starts being accepted within seconds.
UNKNOWN_TTL_S = 5.0
MAX_ENTRIES = 200_000


class DeviceCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: OrderedDict[str, tuple[float, Device | None]] = OrderedDict()

    async def resolve(self, device_ids: set[str]) -> dict[str, Device]:
        """Return the known devices among ``device_ids``."""
        now = time.monotonic()
        found: dict[str, Device] = {}
        missing = []
        for device_id in device_ids:
            entry = self._entries.get(device_id)
            if entry is not None and now - entry[0] < (KNOWN_TTL_S if entry[1] else UNKNOWN_TTL_S):
                if entry[1] is not None:
                    found[device_id] = entry[1]
            else:
                missing.append(device_id)
        if missing:
            loaded = await self._store.get_devices(missing)
            for device_id in missing:
                device = loaded.get(device_id)
                self._entries[device_id] = (now, device)
                self._entries.move_to_end(device_id)
                if device is not None:
                    found[device_id] = device
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return found

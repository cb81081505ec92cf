"""WatchService: seed 004's watches, each a live subscription holding a device's latest values.

Which devices a tenant watches is kept in the database (every process knows them); the subscription
behind a watch lives in the process that was queried for it, starts from the stored latest values, and
is stopped once nobody has queried it for ``inactivity_s`` (the watch then shows `inactive` until it is
queried again, which starts it anew).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from telemetra.domain.models import Device
from telemetra.domain.online import is_online
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.domain.unflatten import unflatten
from telemetra.errors import NotFound, ValidationFailed
from telemetra.live.hub import LiveHub, Subscription
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["WatchService", "WatchNotFound"]

# Checks for idle watches this often: a quarter of the timeout, within these bounds.
MIN_REAP_INTERVAL_S, MAX_REAP_INTERVAL_S = 0.05, 30.0


class WatchNotFound(NotFound):
    code = "device_not_registered"
    default_message = "This device is not registered for monitoring; POST /api/register-device first."


@dataclass(eq=False)
class _LiveWatch:
    device_id: str
    subscription: Subscription
    values: dict[str, Any] = field(default_factory=dict)
    timestamp: str | None = None
    last_queried: float = field(default_factory=time.monotonic)
    task: asyncio.Task | None = None


class WatchService:
    def __init__(self, store: Store, hub: LiveHub, *, inactivity_s: float, default_offline_after_s: int) -> None:
        self._store = store
        self._hub = hub
        self.inactivity_s = inactivity_s
        self._default_offline_after_s = default_offline_after_s
        self._live: dict[str, _LiveWatch] = {}

    @property
    def running(self) -> set[str]:
        """Ids of the devices this process holds a live subscription for."""
        return set(self._live)

    async def register(self, device: Device) -> bool:
        """Watch the device and start its subscription; False when it was already watched."""
        added = await self._store.watches.add_watch(device.tenant_id, device.pk, utcnow())
        await self._ensure_live(device)
        if added:
            logger.info("watch started for device %s", device.id)
        return added

    async def unregister(self, device: Device) -> None:
        if not await self._store.watches.remove_watch(device.tenant_id, device.pk):
            raise WatchNotFound()
        self._stop(device.id)
        logger.info("watch removed for device %s", device.id)

    async def list(self, tenant_id: int) -> tuple[list[dict[str, Any]], str | None]:
        """Seed 004's device list and its default device (the first registered)."""
        records = await self._store.watches.list_watches(tenant_id)
        devices = await self._store.get_devices([r.device_id for r in records])
        now = utcnow()
        out: list[dict[str, Any]] = []
        for record in records:
            device = devices.get(record.device_id)
            if device is None:
                continue
            idle = (now - record.last_queried_at).total_seconds() > self.inactivity_s
            out.append(
                {
                    "deviceId": device.id,
                    "registeredAt": isoformat(record.registered_at),
                    "lastSeen": isoformat(device.last_seen),
                    "status": "inactive" if idle else "registered",
                    "isConnected": is_online(device, now, self._default_offline_after_s),
                }
            )
        return out, (out[0]["deviceId"] if out else None)

    async def default_device_id(self, tenant_id: int) -> str:
        """The id of the tenant's default device (the first registered); 422 ``missing_device_id`` without one."""
        records = await self._store.watches.list_watches(tenant_id)
        devices = await self._store.get_devices([r.device_id for r in records])
        for record in records:
            if record.device_id in devices:
                return devices[record.device_id].id
        raise ValidationFailed("name a device: ?deviceId=...", code="missing_device_id")

    async def telemetry(self, device: Device) -> dict[str, Any]:
        """The latest values the watch holds; querying keeps it (or starts it again)."""
        if await self._store.watches.get_watch(device.tenant_id, device.pk) is None:
            raise WatchNotFound()
        await self._store.watches.touch_watch(device.tenant_id, device.pk, utcnow())
        watch = await self._ensure_live(device)
        watch.last_queried = time.monotonic()
        return {
            **watch.values,
            "deviceId": device.id,
            "timestamp": watch.timestamp,
            "isConnected": is_online(device, utcnow(), self._default_offline_after_s),
        }

    async def _ensure_live(self, device: Device) -> _LiveWatch:
        watch = self._live.get(device.id)
        if watch is not None and not watch.subscription.closed:
            return watch
        # Subscribe before reading the stored values: a point committed meanwhile is then not missed.
        watch = _LiveWatch(device.id, self._hub.subscribe(device.tenant_id, {device.id}))
        self._live[device.id] = watch
        latest = await self._store.latest_values(device.pk)
        if latest:
            watch.values = unflatten({key: value for key, (_, value) in latest.items()})
            watch.timestamp = isoformat(max(ts for ts, _ in latest.values()))
        watch.task = asyncio.get_running_loop().create_task(self._follow(watch), name=f"watch-{device.id}")
        return watch

    async def _follow(self, watch: _LiveWatch) -> None:
        while (event := await watch.subscription.next()) is not None:
            # Devices may send only what changed (seed 001's device memory): merge, do not replace.
            watch.values.update(event["values"])
            watch.timestamp = event["timestamp"]

    def _stop(self, device_id: str) -> None:
        watch = self._live.pop(device_id, None)
        if watch is not None:
            watch.subscription.close()  # its task sees the end and returns

    async def run_reaper(self) -> None:
        """Stop the subscriptions nobody has queried for ``inactivity_s``."""
        interval = min(max(self.inactivity_s / 4, MIN_REAP_INTERVAL_S), MAX_REAP_INTERVAL_S)
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self.inactivity_s
            for device_id in [d for d, w in self._live.items() if w.last_queried < cutoff]:
                self._stop(device_id)
                logger.info("watch of device %s inactive: subscription stopped", device_id)

    async def stop(self) -> None:
        """End every subscription and wait for its task."""
        tasks = [w.task for w in self._live.values() if w.task is not None]
        for device_id in list(self._live):
            self._stop(device_id)
        await asyncio.gather(*tasks, return_exceptions=True)

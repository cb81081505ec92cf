"""PresenceMonitor: a device's online status changes, as events others (alert rules) can subscribe to.

Two causes: the broker reports a device's MQTT state (``devices/{id}/state``, or its last will), and a
device falls silent for longer than its ``offline_after``. The silence check is stateless: each tick asks
the database for the devices whose deadline passed since the previous tick, so a restart only loses the
ticks it was away for. Every `serve` process runs it: with several, a silence event comes once per process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["PresenceMonitor", "PresenceChange"]


@dataclass(frozen=True, slots=True)
class PresenceChange:
    device: Device
    online: bool
    at: datetime
    reason: str  # "mqtt_state" or "silence"


PresenceListener = Callable[[PresenceChange], Awaitable[None]]


class PresenceMonitor:
    def __init__(self, store: Store, *, default_offline_after_s: int, check_interval_s: float) -> None:
        self._store = store
        self._default_offline_after_s = default_offline_after_s
        self._interval_s = check_interval_s
        self._listeners: list[PresenceListener] = []

    def subscribe(self, listener: PresenceListener) -> None:
        """Call ``listener(change)`` for every status change."""
        self._listeners.append(listener)

    async def _emit(self, change: PresenceChange) -> None:
        logger.info("device %s is %s (%s)", change.device.id, "online" if change.online else "offline", change.reason)
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:
                logger.exception("presence listener %r failed", listener)

    async def on_connection(self, device: Device, state: str, previous: str | None) -> None:
        """The broker reported the device's MQTT state (a TelemetryService connection listener)."""
        if state != previous:
            await self._emit(PresenceChange(device, state == "online", utcnow(), "mqtt_state"))

    async def run(self) -> None:
        """Report devices that went offline by silence, tick after tick."""
        since = utcnow()
        while True:
            await asyncio.sleep(self._interval_s)
            until = utcnow()
            try:
                for device in await self._store.devices_gone_silent(since, until, self._default_offline_after_s):
                    deadline = device.last_seen + timedelta(seconds=device.offline_after_s
                                                            or self._default_offline_after_s)
                    await self._emit(PresenceChange(device, False, deadline, "silence"))
                since = until
            except Exception:
                logger.warning("presence check failed; will retry", exc_info=True)

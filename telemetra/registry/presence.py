"""PresenceMonitor: a device's online status changes, as events others (alert rules) can subscribe to.

A device goes online or offline when the broker reports its MQTT state (``devices/{id}/state``, or its
last will), when it falls silent for longer than its ``offline_after``, and when it is heard of again. Each
change is claimed in the database (``Store.presence_changes``: the status last announced is a column, moved
by one conditional update), so with several processes every change is announced once, by one of them; a
process that restarts announces what changed while it was away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["PresenceMonitor", "PresenceChange", "MAX_IDS_NAMED"]

# Devices named in the INFO line of a check, per direction; every change is at DEBUG. A start after an outage,
# or a fleet registered at once, turns thousands of devices online in one check: one line each buried the
# log (and cost the first request of each device a line).
MAX_IDS_NAMED = 5


@dataclass(frozen=True, slots=True)
class PresenceChange:
    device: Device
    online: bool
    at: datetime  # when the change was noticed


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

    async def check(self, device_pk: int | None = None) -> list[PresenceChange]:
        """Claim and announce the changes of every device (or one); return them."""
        now = utcnow()
        changes = [
            PresenceChange(device, online, now)
            for device, online in await self._store.presence_changes(now, self._default_offline_after_s, device_pk)
        ]
        if changes:
            _log_changes(changes)
        for change in changes:
            for listener in self._listeners:
                try:
                    await listener(change)
                except Exception:
                    logger.exception("presence listener %r failed", listener)
        return changes

    async def on_connection(self, device: Device, state: str, previous: str | None) -> None:
        """The broker reported the device's MQTT state (a TelemetryService connection listener): at once."""
        await self.check(device.pk)

    async def run(self) -> None:
        """Announce silences and returns, tick after tick."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:
                logger.warning("presence check failed; will retry", exc_info=True)


def _log_changes(changes: list[PresenceChange]) -> None:
    """One INFO line for the changes of a check (the first few devices named), and one DEBUG line each."""
    named: dict[bool, list[str]] = {True: [], False: []}
    for change in changes:
        logger.debug("device %s is %s", change.device.id, "online" if change.online else "offline")
        named[change.online].append(change.device.id)
    parts = []
    for online, ids in ((True, named[True]), (False, named[False])):
        if ids:
            more = f" and {len(ids) - MAX_IDS_NAMED} more" if len(ids) > MAX_IDS_NAMED else ""
            parts.append(f"{len(ids)} {'online' if online else 'offline'} ({', '.join(ids[:MAX_IDS_NAMED])}{more})")
    logger.info("presence: %s", "; ".join(parts))

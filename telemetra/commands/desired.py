"""DesiredStateService: the state a tenant wants a device in, versioned, and its delta sent to the device.

The device reads it with GET /api/v1/devices/desired, with each heartbeat, and (with MQTT) retained on
``devices/{id}/desired``, so it finds the latest one whenever it subscribes.
"""

from __future__ import annotations

import logging
from typing import Any

from telemetra.commands.transport import CommandTransport, TransportUnavailable
from telemetra.domain.device_state import desired_delta, reported_attributes, reported_view
from telemetra.domain.models import Device
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.domain.unflatten import unflatten
from telemetra.errors import VersionConflict
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["DesiredStateService", "desired_topic"]


def desired_topic(device_id: str) -> str:
    return f"devices/{device_id}/desired"


class DesiredStateService:
    def __init__(self, store: Store, transport: CommandTransport | None) -> None:
        self._store = store
        self._transport = transport

    async def _reported(self, device: Device) -> tuple[dict[str, Any], str | None]:
        latest = await self._store.latest_values(device.pk)
        flat = {key: value for key, (_, value) in latest.items()}
        newest = max((ts for ts, _ in latest.values()), default=None)
        return flat, isoformat(newest)

    async def for_device(self, device: Device) -> dict[str, Any] | None:
        """What the device is told: version, desired state and delta; None when nothing is desired."""
        desired = await self._store.commands.get_desired(device.pk)
        if desired is None:
            return None
        version, state, updated_at = desired
        flat, _ = await self._reported(device)
        return {
            "version": version,
            "state": state,
            "delta": desired_delta(state, reported_view(device, flat)),
            "updated_at": isoformat(updated_at),
        }

    async def view(self, device: Device) -> dict[str, Any]:
        """Reported, desired and delta, as the tenant sees them."""
        flat, timestamp = await self._reported(device)
        desired = await self.for_device(device)
        return {
            "device_id": device.id,
            "reported": {"values": unflatten(flat), "attributes": reported_attributes(device), "timestamp": timestamp},
            "desired": (
                {"version": desired["version"], "state": desired["state"], "updated_at": desired["updated_at"]}
                if desired
                else None
            ),
            "delta": desired["delta"] if desired else {},
        }

    async def set(self, device: Device, state: dict[str, Any], expected_version: int | None) -> dict[str, Any]:
        """Replace the desired state (VersionConflict when ``expected_version`` is stale), then publish it."""
        stored = await self._store.commands.set_desired(device.pk, state, utcnow(), expected_version)
        if stored is None:
            raise VersionConflict()
        logger.info("desired state of device %s: version %d", device.id, stored[0])
        told = await self.for_device(device)
        if self._transport is not None and told is not None:
            try:
                await self._transport.publish(desired_topic(device.id), told, retain=True)
            except TransportUnavailable as exc:
                # The device still reads it over HTTP and at its next heartbeat.
                logger.warning("desired state of device %s not published: %s", device.id, exc.message)
        return await self.view(device)

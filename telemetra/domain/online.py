"""Whether a device is online: what its MQTT connection state says, else how recently it was heard of.

The same rule is written in SQL in the stores' ``presence_changes``; keep the two in step.
"""

from __future__ import annotations

from datetime import datetime

from telemetra.domain.models import Device

__all__ = ["is_online", "offline_after_s"]


def offline_after_s(device: Device, default_s: int) -> int:
    """How long the device counts as online after it was last heard of."""
    return device.offline_after_s or default_s


def is_online(device: Device, now: datetime, default_offline_after_s: int) -> bool:
    """Online while its MQTT state says so (the broker's last will says offline when it drops), or while it
    has been heard of within its ``offline_after``, counting only what it sent after it last went offline."""
    connection = device.attributes.get("connection")
    if connection == "online":
        return True
    if device.last_seen is None:
        return False
    if connection == "offline" and device.connection_at is not None and device.last_seen <= device.connection_at:
        return False
    return (now - device.last_seen).total_seconds() < offline_after_s(device, default_offline_after_s)

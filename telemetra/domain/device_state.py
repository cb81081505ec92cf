"""A device's reported state (latest values and reported attributes) against its desired state: the delta."""

from __future__ import annotations

from typing import Any

from telemetra.domain.models import Device
from telemetra.domain.unflatten import unflatten

__all__ = ["reported_attributes", "reported_view", "desired_delta"]

# What the platform itself writes into a device's attributes: not the device's own report.
PLATFORM_ATTRIBUTES = ("connection", "connection_at")


def reported_attributes(device: Device) -> dict[str, Any]:
    """What the device reported about itself (seed 002's PUT /config): its fields and free attributes."""
    fields = {
        "status": device.status,
        "location": device.location,
        "firmware_version": device.firmware_version,
        "hardware_version": device.hardware_version,
    }
    extra = {k: v for k, v in device.attributes.items() if k not in PLATFORM_ATTRIBUTES}
    return {**{k: v for k, v in fields.items() if v is not None}, **extra}


def reported_view(device: Device, latest_values: dict[str, Any]) -> dict[str, Any]:
    """One object to compare the desired state with: the latest values, overlaid by reported attributes."""
    return {**unflatten(latest_values), **reported_attributes(device)}


def desired_delta(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """The part of ``desired`` that ``reported`` does not match yet (objects compared key by key)."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        have = reported.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            nested = desired_delta(want, have)
            if nested:
                delta[key] = nested
        elif not _same(want, have) or key not in reported:
            delta[key] = want
    return delta


def _same(a: Any, b: Any) -> bool:
    # 21 and 21.0 are the same setting; True and 1 are not.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and bool(a == b)
    return bool(a == b)

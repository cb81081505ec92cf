"""Device ids: strings unique across tenants, safe in URLs, MQTT topics and JWT subjects."""

from __future__ import annotations

import re
import secrets

__all__ = ["DEVICE_ID_PATTERN", "RESERVED_DEVICE_IDS", "check_device_id", "could_be_device_id", "new_device_id"]

DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")

# Words that are routes under /api/v1/devices/: a device with such an id would shadow the route.
RESERVED_DEVICE_IDS = frozenset(
    {
        "register",
        "status",
        "telemetry",
        "config",
        "heartbeat",
        "desired",
        "commands",
        "credentials",
        "state",
        "stream",
        "latest",
        "stats",
        "batch",
        "login",
        "me",
        "keys",
    }
)


def check_device_id(device_id: str) -> str | None:
    """Return why ``device_id`` is not acceptable, or None when it is."""
    if not DEVICE_ID_PATTERN.fullmatch(device_id):
        return "a device id is 1-128 characters: letters, digits and _ . : -, starting with a letter or a digit"
    if device_id.lower() in RESERVED_DEVICE_IDS:
        return f"'{device_id}' is a route name and cannot be a device id"
    return None


def could_be_device_id(device_id: str) -> bool:
    """Whether ``device_id`` has the form of a device id: every device was registered with one (``check_device_id``)."""
    return DEVICE_ID_PATTERN.fullmatch(device_id) is not None


def new_device_id() -> str:
    """Return a fresh random device id (22 characters, like seed 001's ids)."""
    return "d" + secrets.token_hex(11)[:21]

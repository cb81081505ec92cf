"""Plain records passed between the store, the services and the edges."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

__all__ = [
    "Tenant",
    "ApiKey",
    "Device",
    "Point",
    "TelemetryMessage",
    "StoredMessage",
    "KeyKind",
    "KeyScope",
    "Role",
    "ROLES",
    "User",
    "DEVICE_STATUSES",
]

KeyKind = Literal["admin", "tenant", "device"]
KeyScope = Literal["full", "ingest"]
# What a person may do in their tenant (registry/roles.py maps each to its permissions).
Role = Literal["admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "operator", "viewer")
DEVICE_STATUSES = ("active", "inactive", "maintenance")


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    name: str
    created_at: datetime
    retention_days: int | None = None  # raw telemetry older than this is deleted; None: kept for ever


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in: one tenant's (``tenant_id``), or a platform admin's (no tenant). The password
    hash is not part of it: it is read only where a password is checked."""

    id: int
    tenant_id: int | None
    email: str
    name: str
    role: Role
    platform_admin: bool
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the key itself, only its hash and a short visible prefix."""

    id: int
    kind: KeyKind
    prefix: str
    tenant_id: int | None
    device_pk: int | None
    scope: KeyScope
    name: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    usage_count: int = 0

    def is_usable(self, now: datetime) -> bool:
        """Tell whether the key may authenticate a request at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Device:
    pk: int
    id: str
    tenant_id: int
    name: str
    description: str = ""
    device_type: str = "sensor"
    status: str = "active"
    location: str | None = None
    firmware_version: str | None = None
    hardware_version: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_seen: datetime | None = None
    offline_after_s: int | None = None  # None: the platform's TELEMETRA_ONLINE_WINDOW_S
    connection_at: datetime | None = None  # when the broker last reported its MQTT state


class Point(NamedTuple):
    """One value of one key at one time. A named tuple, not a dataclass: every value of every message
    becomes one, and a tuple is made in half the time of a frozen dataclass."""

    key: str
    ts: datetime
    value: float | str | bool | dict[str, Any] | list[Any]


@dataclass(slots=True)
class TelemetryMessage:
    """A validated message of one device, ready to be written."""

    device_pk: int
    ts: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    type: str
    points: list[Point]
    msg_id: str | None = None
    id: int | None = None
    duplicate: bool = False  # set by the store: a msg_id it had already committed
    # Who sent it, for those after the commit (live streams): a pk alone may name another device once its
    # device is deleted (SQLite reuses the highest rowid).
    device_id: str | None = None
    tenant_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    device_pk: int
    device_id: str
    ts: datetime
    data: dict[str, Any]
    metadata: dict[str, Any]
    type: str

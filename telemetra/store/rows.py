"""Column lists and row mappers both backends share.

A row's times come back as the backend stores them (SQLite: integer microseconds; PostgreSQL: datetimes):
each mapper takes the backend's conversion, ``ts``. JSON columns are selected as text (``json`` is the cast
PostgreSQL needs for that, nothing for SQLite, which keeps them as text).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from telemetra.domain.models import ApiKey, Device, Tenant

__all__ = [
    "TENANT_COLUMNS",
    "KEY_COLUMNS",
    "UPDATABLE_DEVICE_COLUMNS",
    "MOVE_CREDENTIAL_EPOCH",
    "device_columns",
    "tenant_row",
    "key_row",
    "device_row",
]

# A stored time back as a datetime; None for NULL. Typed Any: the column (NOT NULL or not) says which, and a
# converter per nullability would cost a call per row for nothing.
TimeOut = Callable[[Any], Any]

TENANT_COLUMNS = "id, name, created_at, retention_days"
KEY_COLUMNS = (
    "id, kind, prefix, tenant_id, device_pk, scope, name, created_at, expires_at, revoked_at, last_used_at, usage_count"
)
UPDATABLE_DEVICE_COLUMNS = frozenset(
    {
        "name",
        "description",
        "device_type",
        "status",
        "location",
        "firmware_version",
        "hardware_version",
        "attributes",
        "last_seen",
        "offline_after_s",
        "connection_at",
    }
)
MOVE_CREDENTIAL_EPOCH = "UPDATE credential_epoch SET value = value + 1"


def device_columns(json: str) -> str:
    """The columns ``device_row`` reads, with ``json`` the cast that selects a JSON column as text."""
    return (
        "pk, id, tenant_id, name, description, device_type, status, location, firmware_version, "
        f"hardware_version, attributes{json}, created_at, updated_at, last_seen, offline_after_s, connection_at"
    )


def tenant_row(row: Any, ts: TimeOut) -> Tenant:
    return Tenant(id=row[0], name=row[1], created_at=ts(row[2]), retention_days=row[3])


def key_row(row: Any, ts: TimeOut) -> ApiKey:
    return ApiKey(
        id=row[0],
        kind=row[1],
        prefix=row[2],
        tenant_id=row[3],
        device_pk=row[4],
        scope=row[5],
        name=row[6],
        created_at=ts(row[7]),
        expires_at=ts(row[8]),
        revoked_at=ts(row[9]),
        last_used_at=ts(row[10]),
        usage_count=row[11],
    )


def device_row(row: Any, ts: TimeOut) -> Device:
    return Device(
        pk=row[0],
        id=row[1],
        tenant_id=row[2],
        name=row[3],
        description=row[4],
        device_type=row[5],
        status=row[6],
        location=row[7],
        firmware_version=row[8],
        hardware_version=row[9],
        attributes=orjson.loads(row[10]),
        created_at=ts(row[11]),
        updated_at=ts(row[12]),
        last_seen=ts(row[13]),
        offline_after_s=row[14],
        connection_at=ts(row[15]),
    )

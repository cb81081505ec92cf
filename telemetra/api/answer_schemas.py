"""Shapes of answers the core routes build themselves: telemetry accepted, the ingest batches, devices, /health
(documentation only; the hook of tests/answers.py validates every answer the test suite receives against them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from telemetra.api.alert_schemas import PaginationOut

__all__ = [
    "BatchAnswer",
    "HealthAnswer",
    "TelemetryAccepted",
    "DeviceAnswer",
    "DeviceRegistered",
    "DeviceList",
    "KeyList",
    "KeyIssued",
    "KeyRevoked",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchItemOut(_Answer):
    index: int = Field(description="The message's position in the batch, from 0.")
    status: Literal["accepted", "rejected"]
    device_id: str | None
    telemetry_id: int | None = Field(None, description="Accepted: the stored message's id.")
    duplicate: bool | None = Field(None, description="Accepted: a replay of a `msg_id` already stored.")
    code: str | None = Field(None, description="Rejected: the error code (docs/errors.md).")
    message: str | None = Field(None, description="Rejected: why.")


BATCH_EXAMPLE: JsonDict = {
    "accepted": 1,
    "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted", "device_id": "boiler-1", "telemetry_id": 812, "duplicate": False},
        {
            "index": 1,
            "status": "rejected",
            "device_id": "meter-7",
            "code": "device_not_found",
            "message": "No device 'meter-7' in your tenant.",
        },
    ],
}


class BatchAnswer(_Answer):
    """Each message's fate, by index: 200 when every one was accepted, 207 when some were."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE]})
    accepted: int
    rejected: int
    results: list[BatchItemOut]


class DatabaseHealth(_Answer):
    backend: Literal["sqlite", "postgres"]
    reachable: bool
    latency_ms: float | None = Field(None, description="The ping's round trip; absent when unreachable.")


class HealthAnswer(_Answer):
    """200 while the database answers; 503 (with Retry-After) while it does not."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "status": "healthy",
                    "version": "0.1.0",
                    "uptime_s": 3600.5,
                    "database": {"backend": "sqlite", "reachable": True, "latency_ms": 0.4},
                }
            ]
        },
    )
    status: Literal["healthy", "unhealthy"]
    version: str
    uptime_s: float
    database: DatabaseHealth


class TelemetryAccepted(_Answer):
    """201: the message is committed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "message": "Telemetry data received successfully",
                    "telemetry_id": 812,
                    "timestamp": "2026-11-22T10:00:00.000000Z",
                    "duplicate": False,
                }
            ]
        },
    )
    message: str
    telemetry_id: int
    device_id: str | None = Field(None, description="The device it was stored for (a tenant key's route).")
    timestamp: str = Field(description="The message's time: its own, or when it was received.")
    duplicate: bool = Field(description="A replay of a `msg_id` already stored: nothing new was written.")


class DeviceOut(_Answer):
    id: str
    name: str
    description: str
    device_type: str
    status: Literal["active", "inactive", "maintenance"] = Field(
        description="An `inactive` device's telemetry is refused (403 `device_inactive`)."
    )
    location: str | None
    firmware_version: str | None
    hardware_version: str | None
    attributes: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    last_seen: str | None
    offline_after_s: int | None
    is_online: bool | None = Field(None, description="Whether it was heard from within its offline window.")
    telemetry_count: int | None = Field(None, description="Messages stored (the device's own status route).")
    api_key: str | None = Field(None, description="At registration only: the device's key, shown once.")


DEVICE_EXAMPLE: JsonDict = {
    "id": "boiler-12",
    "name": "Boiler 12, cellar",
    "description": "",
    "device_type": "boiler",
    "status": "active",
    "location": None,
    "firmware_version": "1.4.2",
    "hardware_version": None,
    "attributes": {},
    "created_at": "2026-11-20T08:00:00.000000Z",
    "updated_at": "2026-11-20T08:00:00.000000Z",
    "last_seen": "2026-11-22T10:00:00.000000Z",
    "offline_after_s": None,
    "is_online": True,
}


class DeviceAnswer(_Answer):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "success", "device": DEVICE_EXAMPLE}]}
    )
    status: Literal["success"]
    device: DeviceOut


class DeviceRegistered(_Answer):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "message": "Device registered successfully",
                    "device": {
                        **{k: v for k, v in DEVICE_EXAMPLE.items() if k != "is_online"},
                        "last_seen": None,
                        "api_key": "tlmd_3q2+7Yk...",
                    },
                }
            ]
        },
    )
    message: str
    device: DeviceOut


class DeviceList(_Answer):
    status: Literal["success"]
    devices: list[DeviceOut]
    pagination: PaginationOut


class KeyOut(_Answer):
    """A key as its tenant sees it: never the key itself, only its visible prefix."""

    id: int
    kind: Literal["admin", "tenant", "device"]
    prefix: str
    scope: Literal["full", "ingest"]
    name: str
    tenant_id: int | None
    device_id: str | None
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    usage_count: int
    status: Literal["active", "expired", "revoked"] | None = None


class KeyList(_Answer):
    keys: list[KeyOut]
    pagination: PaginationOut


class KeyIssued(_Answer):
    api_key: str = Field(description="The key itself: shown in this answer only.")
    key: KeyOut
    previous: KeyOut | None = Field(None, description="A rotation: the key replaced, valid until its new expiry.")


class KeyRevoked(_Answer):
    message: str
    key: KeyOut

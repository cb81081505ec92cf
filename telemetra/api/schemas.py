"""Request and response shapes of the core API (pydantic, named by purpose)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from telemetra.domain.models import ApiKey, Device, StoredMessage, Tenant
from telemetra.domain.online import is_online
from telemetra.domain.timeparse import isoformat
from telemetra.ratelimit.limiter import parse_rate

__all__ = [
    "ErrorBody",
    "TenantCreate",
    "KeyCreate",
    "DeviceRegister",
    "DevicePassword",
    "RateLimitsUpdate",
    "KeyRotate",
    "DeviceAdminUpdate",
    "DeviceUpdate",
    "TelemetryIn",
    "device_public",
    "key_public",
    "tenant_public",
    "telemetry_record",
    "pagination",
]


class ErrorBody(BaseModel):
    error: str = Field(description="The HTTP reason phrase.", examples=["Unauthorized"])
    code: str = Field(description="A stable machine code.", examples=["invalid_api_key"])
    message: str = Field(description="What was wrong and what to do.")
    details: Any | None = Field(None, description="Per-field problems, for validation errors.")


# A password is kept exactly as typed: the models' whitespace stripping must not touch it.
_Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=8, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TenantCreate(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["acme"])


class TenantUpdate(_Strict):
    retention_days: int | None = Field(
        description="Days raw points and messages are kept (null: for ever); rollups are kept regardless.",
        ge=1,
        le=36_500,
        examples=[365],
    )


def _storable_expiry(when: datetime | None) -> datetime | None:
    """A key's expiry in UTC (a naive time is UTC), within years both databases hold: 0001-01-01 or a 9999
    time with an offset leaves Python's range once in UTC and used to fail the insert with 500."""
    if when is None:
        return None
    try:
        utc = (when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when).astimezone(timezone.utc)
    except OverflowError:
        utc = None
    if utc is None or not EXPIRY_YEARS[0] <= utc.year <= EXPIRY_YEARS[1]:
        raise ValueError(f"must lie between the years {EXPIRY_YEARS[0]} and {EXPIRY_YEARS[1]}")
    return utc


EXPIRY_YEARS = (1970, 9998)
KeyExpiry = Annotated[datetime | None, AfterValidator(_storable_expiry)]


class KeyCreate(_Strict):
    scope: Literal["full", "ingest"] = Field(
        "full", description="`full`: every tenant route; `ingest`: may only send telemetry (gateways)."
    )
    name: str = Field("", max_length=100, description="A label to recognise the key by.")
    expires_at: KeyExpiry = Field(None, description="When the key stops working (ISO 8601; years 1970 to 9998).")


class DeviceRegister(BaseModel):
    """Seed 002's registration body; `id` is optional (generated when absent)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    id: str | None = Field(None, max_length=128, examples=["bfadafebb608a154206aqu"])
    name: str = Field(min_length=1, max_length=100, examples=["Temperature Sensor 001"])
    description: str = Field("", max_length=1000)
    device_type: str = Field("sensor", min_length=1, max_length=50)
    location: str | None = Field(None, max_length=200)
    firmware_version: str | None = Field(None, max_length=50)
    hardware_version: str | None = Field(None, max_length=50)
    password: _Password | None = Field(
        None,
        json_schema_extra={"writeOnly": True},
        description="Lets the device log in at POST /auth/login (stored as an argon2 hash, never shown).",
    )


class DevicePassword(_Strict):
    password: _Password = Field(
        json_schema_extra={"writeOnly": True},
        description="The device's new password; tokens issued before stop working.",
    )


class RateLimitsUpdate(_Strict):
    """Rates such as `120/minute` (`N/second|minute|hour|day`); a limit left out or null takes the default."""

    device: str | None = None
    device_telemetry: str | None = None
    tenant: str | None = None
    batch: str | None = None

    @field_validator("device", "device_telemetry", "tenant", "batch")
    @classmethod
    def _rate(cls, text: str | None) -> str | None:
        if text is None:
            return None
        try:
            parse_rate(text)
        except ValueError:
            raise ValueError("must be a rate like '120/minute'") from None
        return text


class KeyRotate(_Strict):
    grace_s: int = Field(
        0,
        ge=0,
        le=7 * 86_400,
        description="How long the old key keeps working, in seconds (0: revoked at once).",
        examples=[3600],
    )
    expires_at: KeyExpiry = Field(None, description="When the new key stops working (ISO 8601; years 1970 to 9998).")


class DeviceAdminUpdate(_Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    device_type: str | None = Field(None, min_length=1, max_length=50)
    status: Literal["active", "inactive", "maintenance"] | None = None
    location: str | None = Field(None, max_length=200)
    firmware_version: str | None = Field(None, max_length=50)
    hardware_version: str | None = Field(None, max_length=50)
    offline_after_s: int | None = Field(
        None, ge=1, le=2_592_000, description="Seconds of silence after which the device counts as offline."
    )


class DeviceUpdate(_Strict):
    """A tenant's change to one of its devices (the console's edit form); absent fields stay as they are."""

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=1000)
    type: str | None = Field(None, min_length=1, max_length=50, description="The device type.")
    status: Literal["active", "inactive", "maintenance"] | None = None
    location: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = Field(
        None, description="Replaces the device's attributes (what it reported about itself, or set here)."
    )


class TelemetryIn(BaseModel):
    """Seed 002's telemetry message (documentation only: the route validates it in the domain layer)."""

    data: dict[str, Any] = Field(examples=[{"temperature": 22.5, "humidity": 65, "pressure": 1013.25}])
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"battery_level": 85}])
    type: str = Field("sensor", max_length=64)
    timestamp: str | float | None = Field(
        None, description="ISO 8601 (naive = UTC) or epoch seconds (< 1e11) / milliseconds; default: now."
    )


def device_public(device: Device, *, online_window_s: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    body = {
        "id": device.id,
        "name": device.name,
        "description": device.description,
        "device_type": device.device_type,
        "status": device.status,
        "location": device.location,
        "firmware_version": device.firmware_version,
        "hardware_version": device.hardware_version,
        "attributes": device.attributes,
        "created_at": isoformat(device.created_at),
        "updated_at": isoformat(device.updated_at),
        "last_seen": isoformat(device.last_seen),
        "offline_after_s": device.offline_after_s,
    }
    if online_window_s is not None and now is not None:
        body["is_online"] = is_online(device, now, online_window_s)
    return body


def key_public(key: ApiKey, device_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    body = {
        "id": key.id,
        "kind": key.kind,
        "prefix": key.prefix,
        "scope": key.scope,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "device_id": device_id,
        "created_at": isoformat(key.created_at),
        "expires_at": isoformat(key.expires_at),
        "revoked_at": isoformat(key.revoked_at),
        "last_used_at": isoformat(key.last_used_at),
        "usage_count": key.usage_count,
    }
    if now is not None:
        body["status"] = "revoked" if key.revoked_at is not None else "active" if key.is_usable(now) else "expired"
    return body


def tenant_public(tenant: Tenant, device_count: int | None = None) -> dict[str, Any]:
    body = {
        "id": tenant.id,
        "name": tenant.name,
        "created_at": isoformat(tenant.created_at),
        "retention_days": tenant.retention_days,
    }
    if device_count is not None:
        body["device_count"] = device_count
    return body


def telemetry_record(msg: StoredMessage) -> dict[str, Any]:
    """Seed 002's record shape (payload, metadata, data_type) with the native names beside it."""
    return {
        "id": msg.id,
        "device_id": msg.device_id,
        "timestamp": isoformat(msg.ts),
        "data": msg.data,
        "payload": msg.data,
        "metadata": msg.metadata,
        "type": msg.type,
        "data_type": msg.type,
    }


def pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    pages = (total + per_page - 1) // per_page
    return {
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
        "has_next": page < pages,
        "has_prev": page > 1,
    }

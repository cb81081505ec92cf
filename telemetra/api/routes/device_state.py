"""Device state: what a device reports, what its tenant desires, and the difference."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from telemetra.api.deps import DeviceDep, OperateDep, ReadDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import MAX_ID
from telemetra.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/devices", tags=["device state"], responses=error_responses(401, 403))
device_router = APIRouter(prefix="/api/v1/devices", tags=["device state"], responses=error_responses(401, 403))

MAX_DESIRED_BYTES = 65_536


class DesiredUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: dict[str, Any] = Field(examples=[{"sampling_s": 30, "firmware_version": "2.2.0"}])
    # The version is a PostgreSQL `integer`: a larger one cannot be current (and would fail the query).
    version: int | None = Field(
        None,
        ge=0,
        le=MAX_ID,
        description="The version this change is based on; 409 if it is no longer the current one (omit to overwrite).",
    )


@router.get("/{device_id}/state", responses=error_responses(404), summary="Reported and desired state, and delta")
async def device_state(device_id: str, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    """`reported`: latest values and reported attributes (a device that sends only what changed keeps its
    full state); `desired`: what the tenant set, versioned; `delta`: the desired part not reported yet."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    return await services.desired.view(device)


@router.put(
    "/{device_id}/desired",
    openapi_extra=json_body_doc(DesiredUpdate),
    responses=error_responses(400, 404, 409, 413, 415, 422),
    summary="Set a device's desired state",
)
async def set_desired(device_id: str, request: Request, services: ServicesDep, principal: OperateDep) -> dict[str, Any]:
    """Replaces the desired state and bumps its version; the device gets the delta (MQTT: retained on
    `devices/{id}/desired`), on GET /api/v1/devices/desired and with its heartbeat."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    body = await read_model(request, services.settings, DesiredUpdate)
    if len(repr(body.state)) > MAX_DESIRED_BYTES:
        raise ValidationFailed(f"'state' is larger than {MAX_DESIRED_BYTES} bytes", code="state_too_large")
    return await services.desired.set(device, body.state, body.version)


@device_router.get("/desired", summary="The calling device's desired state and delta (device key)")
async def own_desired(services: ServicesDep, principal: DeviceDep) -> dict[str, Any]:
    """`{"version", "state", "delta", "updated_at"}`; version 0 and an empty state when nothing is desired."""
    told = await services.desired.for_device(principal.device)
    return told or {"version": 0, "state": {}, "delta": {}, "updated_at": None}

"""Seed 004's contract (document ``004_a92b28ec10879bcd``): an IoT hub monitoring client's REST API.

The shape kept: ``GET /api/devices``, ``POST /api/register-device`` ``{"deviceId"}``,
``DELETE /api/unregister-device/{id}``, ``GET /api/telemetry?deviceId=`` (the latest values with
``deviceId``, ``timestamp``, ``isConnected``); watches stop after an inactivity timeout.
A thin adapter over ``live/watches.py``. The tenant key goes in `X-API-Key` or, on these routes only, in
`?api_key=` as the seed allowed (the log filter redacts it from every log line).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from telemetra.api.deps import ServicesDep, api_key_header, identify, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.registry.auth import TenantCaller
from telemetra.registry.roles import require_permission

router = APIRouter(prefix="/api", tags=["seed 004: monitoring"], responses=error_responses(401, 403))


async def _tenant(
    request: Request,
    services: ServicesDep,
    header_key: Annotated[str | None, Depends(api_key_header)],
    api_key: Annotated[
        str | None, Query(description="The tenant key, when a header cannot be sent (prefer X-API-Key).")
    ] = None,
) -> TenantCaller:
    key = header_key or api_key
    # A key as before (no rate limit counted here, as before); else a person's session cookie.
    caller = await services.auth.authenticate(key) if key else await identify(request, services, None)
    # Watching is reading, but starting or stopping a watch changes what the server keeps: an operator's.
    return require_permission(caller, "read" if request.method == "GET" else "operate")


MonitorTenant = Annotated[TenantCaller, Depends(_tenant)]


class DeviceWatch(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    deviceId: str = Field(min_length=1, max_length=128, examples=["my-device-1"])


@router.post(
    "/register-device",
    openapi_extra=json_body_doc(DeviceWatch),
    responses=error_responses(400, 404, 413, 415, 422),
    summary="Watch a device's live telemetry",
)
async def register_device(request: Request, services: ServicesDep, principal: MonitorTenant) -> dict[str, Any]:
    body = await read_model(request, services.settings, DeviceWatch)
    device = await services.devices.get_in_tenant(principal.tenant_id, body.deviceId)
    if await services.watches.register(device):
        return {"deviceId": device.id, "status": "registering", "message": "Device registration initiated"}
    return {"deviceId": device.id, "status": "already_registered", "message": "Device is already registered"}


@router.delete("/unregister-device/{device_id}", responses=error_responses(404), summary="Stop watching a device")
async def unregister_device(device_id: str, services: ServicesDep, principal: MonitorTenant) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    await services.watches.unregister(device)
    return {"deviceId": device.id, "status": "unregistered", "message": "Device unregistered successfully"}


@router.get("/devices", summary="The watched devices")
async def watched_devices(services: ServicesDep, principal: MonitorTenant) -> dict[str, Any]:
    """`status` is `registered`, or `inactive` for a watch not queried for TELEMETRA_WATCH_INACTIVITY_S."""
    devices, default = await services.watches.list(principal.tenant_id)
    return {"devices": devices, "defaultDevice": default}


@router.get("/telemetry", responses=error_responses(404, 422), summary="The latest telemetry of a watched device")
async def watched_telemetry(
    services: ServicesDep, principal: MonitorTenant, deviceId: Annotated[str | None, Query(max_length=128)] = None
) -> dict[str, Any]:
    """`{"deviceId", "timestamp", "isConnected", <latest values>}`; without `deviceId`, the default device."""
    if deviceId is None:
        deviceId = await services.watches.default_device_id(principal.tenant_id)
    device = await services.devices.get_in_tenant(principal.tenant_id, deviceId)
    return await services.watches.telemetry(device)

"""Seed 002's device routes: registration, and what a device does with its own key (sending telemetry is in
``ingest.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telemetra.api.answer_schemas import DeviceAnswer, DeviceRegistered
from telemetra.api.deps import DeviceDep, OptionalPrincipalDep, ServicesDep, json_body_doc, read_document, read_model
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import OffsetQuery
from telemetra.api.schemas import DeviceRegister, device_public, telemetry_record
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.errors import Unauthorized, ValidationFailed
from telemetra.registry.roles import require_permission

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=error_responses(429))

BODY_ERRORS = (400, 401, 403, 413, 415, 422)


@router.post(
    "/register",
    status_code=201,
    responses={**answer_doc(DeviceRegistered, 201, "Registered."), **error_responses(*BODY_ERRORS, 409)},
    response_model=None,
    openapi_extra=json_body_doc(DeviceRegister),
    summary="Register a device",
)
async def register_device(request: Request, services: ServicesDep, principal: OptionalPrincipalDep) -> dict[str, Any]:
    """Register a device in the caller's tenant (tenant key of scope `full`); its key is shown once.

    Without a key this is refused, unless open registration puts the device in the `default` tenant.
    """
    if principal is None:
        if not services.settings.open_registration:
            raise Unauthorized(
                "Registering a device needs a tenant key in the X-API-Key header.", code="missing_api_key"
            )
        tenant_id = (await services.tenants.default_tenant()).id
    else:
        tenant_id = require_permission(principal, "manage").tenant_id
    body = await read_model(request, services.settings, DeviceRegister)
    device, secret = await services.devices.register(
        tenant_id,
        name=body.name,
        device_id=body.id,
        description=body.description,
        device_type=body.device_type,
        location=body.location,
        firmware_version=body.firmware_version,
        hardware_version=body.hardware_version,
    )
    if body.password is not None:
        await services.login.set_password(device, body.password)
    return {"message": "Device registered successfully", "device": {**device_public(device), "api_key": secret}}


@router.get(
    "/status",
    responses={**answer_doc(DeviceAnswer), **error_responses(401, 403)},
    response_model=None,
    summary="The calling device's status",
)
async def device_status(services: ServicesDep, principal: DeviceDep) -> dict[str, Any]:
    device, now = principal.device, utcnow()
    count, _first, _last = await services.store.device_stats(device.pk)
    body = device_public(device)
    body["last_seen"] = isoformat(now)  # this very request is the device's latest sign of life
    body["telemetry_count"] = count
    body["is_online"] = True
    return {"status": "success", "device": body}


@router.get("/telemetry", responses=error_responses(401, 403, 422), summary="The calling device's telemetry")
async def own_telemetry(
    services: ServicesDep,
    principal: DeviceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
    type: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Messages as they were sent, newest first."""
    messages, total = await services.store.list_messages(
        device_pk=principal.device.pk, msg_type=type, limit=limit, offset=offset
    )
    return {
        "status": "success",
        "telemetry": [telemetry_record(m) for m in messages],
        "count": len(messages),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.put(
    "/config",
    responses=error_responses(*BODY_ERRORS),
    summary="Report the device's configuration",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "status": {"type": "string", "enum": ["active", "inactive", "maintenance"]},
                            "location": {"type": "string"},
                            "firmware_version": {"type": "string"},
                            "hardware_version": {"type": "string"},
                            "offline_after_s": {"type": "integer", "minimum": 1},
                        },
                        "additionalProperties": True,
                    }
                }
            },
        }
    },
)
async def report_config(request: Request, services: ServicesDep, principal: DeviceDep) -> dict[str, Any]:
    """The device reports status, location, firmware and hardware versions, and how long a silence means it is
    offline (`offline_after_s`); other keys are kept as attributes."""
    doc = await read_document(request, services.settings)
    if not isinstance(doc, dict) or not doc:
        raise ValidationFailed("the body must be a non-empty JSON object", code="invalid_config")
    device = await services.devices.report_config(principal.device, doc)
    return {"message": "Device configuration updated successfully", "device": device_public(device)}


@router.post("/heartbeat", responses=error_responses(401, 403), summary="Tell the platform the device is alive")
async def heartbeat(services: ServicesDep, principal: DeviceDep) -> dict[str, Any]:
    """Answers with the commands waiting for the device (they count as sent; acknowledge each one) and, once
    a desired state is set, its version and delta."""
    now = utcnow()
    device = await services.store.update_device(principal.device.pk, {"last_seen": now})
    commands = await services.commands.fetch_for_heartbeat(device)
    answer: dict[str, Any] = {
        "message": "Heartbeat received",
        "device_id": principal.device.id,
        "timestamp": isoformat(now),
        "status": "online",
        "commands": commands,
    }
    desired = await services.desired.for_device(device)
    if desired is not None:
        answer["desired"] = {"version": desired["version"], "delta": desired["delta"]}
    return answer

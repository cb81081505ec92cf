"""A tenant's changes to its own devices: edit, delete, a new key; another tenant's device answers 404.

Every route here needs the permission `manage` (role `admin`, or a tenant key of scope `full`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from telemetra.api.deps import ManageDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.schemas import DeviceUpdate, KeyRotate, device_public, key_public
from telemetra.domain.models import Device
from telemetra.domain.timeparse import utcnow

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=error_responses(401, 403, 404, 429))


def device_answer(device: Device, online_window_s: int) -> dict[str, Any]:
    """The device as the tenant's routes show it, with the console's names for id, type and attributes."""
    body = device_public(device, online_window_s=online_window_s, now=utcnow())
    return {**body, "device_id": device.id, "type": device.device_type, "metadata": device.attributes}


@router.patch(
    "/{device_id}",
    responses=error_responses(400, 409, 413, 415, 422),
    openapi_extra=json_body_doc(DeviceUpdate),
    summary="Edit one of the tenant's devices",
)
async def update_device(
    device_id: str, request: Request, services: ServicesDep, principal: ManageDep
) -> dict[str, Any]:
    """Change `name`, `description`, `type`, `status`, `location` (null clears it) or `metadata` (the device's
    attributes, replaced whole); absent fields stay. Answers the device. Role: admin."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    body = await read_model(request, services.settings, DeviceUpdate)
    changes = body.model_dump(exclude_unset=True)
    if "type" in changes:
        changes["device_type"] = changes.pop("type")
    if "metadata" in changes:
        changes["attributes"] = changes.pop("metadata")
    updated = await services.devices.tenant_update(device, changes)
    return device_answer(updated, services.settings.online_window_s)


@router.delete("/{device_id}", status_code=204, summary="Delete one of the tenant's devices and its data")
async def delete_device(device_id: str, services: ServicesDep, principal: ManageDep) -> Response:
    """The device goes with its keys (refused at once, on every process), telemetry, statistics, commands and
    alerts. Role: admin."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    await services.devices.delete(device)
    return Response(status_code=204)


@router.post(
    "/{device_id}/key/rotate",
    status_code=201,
    responses=error_responses(400, 413, 415, 422),
    openapi_extra=json_body_doc(KeyRotate, required=False),
    summary="Give a device a new key",
)
async def rotate_device_key(
    device_id: str, request: Request, services: ServicesDep, principal: ManageDep
) -> dict[str, Any]:
    """A new device key, shown this once (`api_key`); the device's earlier keys are revoked at once, or keep
    working `grace_s` seconds more. Role: admin."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    body = await read_model(request, services.settings, KeyRotate) if has_body else KeyRotate()
    key, secret, previous = await services.keys.replace_device_key(
        device, grace_s=body.grace_s, expires_at=body.expires_at
    )
    now = utcnow()
    return {
        "api_key": secret,
        "key_id": key.id,
        "device_id": device.id,
        "key": key_public(key, device.id, now),
        "previous": [key_public(k, device.id, now) for k in previous],
    }

"""Operator routes (admin key): a tenant's or a device's own rate limits in place of the defaults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from telemetra.api.deps import AdminDep, Services, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import IdPath
from telemetra.api.schemas import RateLimitsUpdate
from telemetra.errors import ValidationFailed
from telemetra.ratelimit.policy import LIMIT_NAMES

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=error_responses(401, 403))

DEVICE_LIMITS = ("device", "device_telemetry", "batch")


async def _answer(services: Services, tenant_id: int, device_pk: int | None) -> dict[str, Any]:
    names = DEVICE_LIMITS if device_pk is not None else LIMIT_NAMES
    overrides = {
        name: rate
        for t, d, name, rate in await services.store.rate_limit_overrides()
        if t == tenant_id and d == device_pk
    }
    effective = {name: str(await services.rate_limits.rate(name, tenant_id, device_pk)) for name in names}
    return {"overrides": overrides, "effective": effective, "defaults": services.rate_limits.defaults()}


async def _update(request: Request, services: Services, tenant_id: int, device_pk: int | None) -> None:
    body = await read_model(request, services.settings, RateLimitsUpdate)
    rates = {name: rate for name, rate in body.model_dump().items() if rate is not None}
    if device_pk is not None and "tenant" in rates:
        raise ValidationFailed(
            "'tenant' is a tenant's limit; set it on /admin/tenants/{id}/rate-limits", code="invalid_rate_limit"
        )
    await services.store.set_rate_limit_overrides(tenant_id, device_pk, rates)
    services.rate_limits.forget_overrides()


@router.get("/tenants/{tenant_id}/rate-limits", responses=error_responses(404), summary="A tenant's rate limits")
async def tenant_rate_limits(tenant_id: IdPath, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    await services.tenants.get(tenant_id)
    return {"tenant_id": tenant_id, **await _answer(services, tenant_id, None)}


@router.put(
    "/tenants/{tenant_id}/rate-limits",
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body_doc(RateLimitsUpdate),
    summary="Set a tenant's rate limits",
)
async def set_tenant_rate_limits(
    tenant_id: IdPath, request: Request, services: ServicesDep, _: AdminDep
) -> dict[str, Any]:
    """Replace the tenant's limits (its keys, and the default of its devices); other processes apply them
    within 5 seconds."""
    await services.tenants.get(tenant_id)
    await _update(request, services, tenant_id, None)
    return {"tenant_id": tenant_id, **await _answer(services, tenant_id, None)}


@router.get("/devices/{device_id}/rate-limits", responses=error_responses(404), summary="A device's rate limits")
async def device_rate_limits(device_id: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    device = await services.devices.get(device_id)
    return {"device_id": device.id, **await _answer(services, device.tenant_id, device.pk)}


@router.put(
    "/devices/{device_id}/rate-limits",
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body_doc(RateLimitsUpdate),
    summary="Set a device's rate limits",
)
async def set_device_rate_limits(
    device_id: str, request: Request, services: ServicesDep, _: AdminDep
) -> dict[str, Any]:
    """Replace the device's own limits (`device`, `device_telemetry`, `batch`); unset ones follow its tenant's."""
    device = await services.devices.get(device_id)
    await _update(request, services, device.tenant_id, device.pk)
    return {"device_id": device.id, **await _answer(services, device.tenant_id, device.pk)}

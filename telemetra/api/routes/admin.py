"""Operator routes (admin key): tenants and their keys, every device, dashboard, all telemetry."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telemetra.api.deps import AdminDep, ServicesDep, json_body_doc, read_model
from telemetra.api.errors import error_responses
from telemetra.api.params import IdPath, IdQuery, PageQuery
from telemetra.api.queries import QUERY_ERRORS, run_query
from telemetra.api.schemas import (
    DeviceAdminUpdate,
    KeyCreate,
    TenantCreate,
    TenantUpdate,
    device_public,
    key_public,
    pagination,
    telemetry_record,
    tenant_public,
)
from telemetra.domain.timeparse import utcnow
from telemetra.store import DeviceFilter

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=error_responses(401, 403))

RECENT_TELEMETRY_SHOWN = 10


@router.post(
    "/tenants",
    status_code=201,
    responses=error_responses(400, 409, 413, 415, 422),
    openapi_extra=json_body_doc(TenantCreate),
    summary="Create a tenant and its first key",
)
async def create_tenant(request: Request, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """Create a tenant; the answer holds its first full key, shown this once."""
    body = await read_model(request, services.settings, TenantCreate)
    tenant, key, secret = await services.tenants.create(body.name)
    return {"tenant": tenant_public(tenant), "api_key": secret, "key": key_public(key)}


@router.get("/tenants", summary="List tenants")
async def list_tenants(services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    return {"tenants": [tenant_public(t, n) for t, n in await services.store.list_tenants()]}


@router.put(
    "/tenants/{tenant_id}",
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body_doc(TenantUpdate),
    summary="Set a tenant's retention",
)
async def update_tenant(tenant_id: IdPath, request: Request, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """`{"retention_days": 365}`: raw telemetry older than that is deleted by the periodic upkeep (on
    PostgreSQL a month's partition is dropped whole once no tenant keeps it); `null` keeps it for ever."""
    await services.tenants.get(tenant_id)
    body = await read_model(request, services.settings, TenantUpdate)
    await services.store.set_tenant_retention(tenant_id, body.retention_days)
    return {"tenant": tenant_public(await services.tenants.get(tenant_id))}


@router.get("/tenants/{tenant_id}/keys", responses=error_responses(404), summary="List a tenant's keys")
async def list_tenant_keys(tenant_id: IdPath, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    await services.tenants.get(tenant_id)
    keys = await services.store.list_keys(tenant_id=tenant_id, kind="tenant")
    return {"keys": [key_public(k) for k in keys]}


@router.post(
    "/tenants/{tenant_id}/keys",
    status_code=201,
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body_doc(KeyCreate, required=False),
    summary="Issue a tenant key",
)
async def create_tenant_key(tenant_id: IdPath, request: Request, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    """Issue a key of scope `full` or `ingest`; the answer holds the key, shown this once."""
    await services.tenants.get(tenant_id)
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    body = await read_model(request, services.settings, KeyCreate) if has_body else KeyCreate()
    key, secret = await services.keys.issue_tenant_key(
        tenant_id, scope=body.scope, name=body.name, expires_at=body.expires_at
    )
    return {"key": key_public(key), "api_key": secret}


@router.delete("/tenants/{tenant_id}/keys/{key_id}", responses=error_responses(404), summary="Revoke a tenant key")
async def revoke_tenant_key(tenant_id: IdPath, key_id: IdPath, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    await services.tenants.get(tenant_id)
    key = await services.keys.revoke_tenant_key(tenant_id, key_id)
    return {"message": "Key revoked", "key": key_public(key)}


@router.get("/devices", summary="List all devices (filter, paginate)")
async def list_devices(
    services: ServicesDep,
    _: AdminDep,
    page: PageQuery = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    status: str | None = None,
    type: str | None = None,
    search: Annotated[str | None, Query(max_length=100)] = None,
    tenant_id: IdQuery = None,
) -> dict[str, Any]:
    flt = DeviceFilter(
        tenant_id=tenant_id,
        status=status,
        device_type=type,
        search=search,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    devices, total = await services.devices.list(flt)
    now, window = utcnow(), services.settings.online_window_s
    items = []
    for device in devices:
        body = device_public(device, online_window_s=window, now=now)
        body["tenant_id"] = device.tenant_id
        body["telemetry_count"] = (await services.store.device_stats(device.pk))[0]
        items.append(body)
    return {"status": "success", "devices": items, "pagination": pagination(page, per_page, total)}


@router.get("/devices/{device_id}", responses=error_responses(404), summary="Device details")
async def get_device(device_id: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    device = await services.devices.get(device_id)
    count, first, last = await services.store.device_stats(device.pk)
    recent, _total = await services.store.list_messages(device_pk=device.pk, limit=RECENT_TELEMETRY_SHOWN)
    body = device_public(device)
    body["tenant_id"] = device.tenant_id
    body["statistics"] = {
        "total_telemetry_records": count,
        "latest_telemetry": last.isoformat() if last else None,
        "first_telemetry": first.isoformat() if first else None,
        "is_online": device_public(device, online_window_s=services.settings.online_window_s, now=utcnow())[
            "is_online"
        ],
    }
    body["recent_telemetry"] = [telemetry_record(m) for m in recent]
    return {"status": "success", "device": body}


@router.put(
    "/devices/{device_id}",
    responses=error_responses(400, 404, 409, 413, 415, 422),
    openapi_extra=json_body_doc(DeviceAdminUpdate),
    summary="Update a device",
)
async def update_device(device_id: str, request: Request, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    device = await services.devices.get(device_id)
    body = await read_model(request, services.settings, DeviceAdminUpdate)
    updated = await services.devices.admin_update(device, body.model_dump(exclude_unset=True))
    return {"message": "Device updated successfully", "device": device_public(updated)}


@router.delete("/devices/{device_id}", responses=error_responses(404), summary="Delete a device and its data")
async def delete_device(device_id: str, services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    device = await services.devices.get(device_id)
    await services.devices.delete(device)
    return {"message": f"Device {device.name} deleted successfully"}


@router.get("/dashboard", summary="Counts for an operator's dashboard")
async def dashboard(services: ServicesDep, _: AdminDep) -> dict[str, Any]:
    now = utcnow()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = await services.store.dashboard(now, now - timedelta(seconds=services.settings.online_window_s), day_start)
    by_status = counts.devices_by_status
    return {
        "status": "success",
        "statistics": {
            "tenants": counts.tenants,
            "devices": {
                "total": sum(by_status.values()),
                "active": by_status.get("active", 0),
                "inactive": by_status.get("inactive", 0),
                "maintenance": by_status.get("maintenance", 0),
                "online": counts.online,
            },
            "telemetry": {
                "total_records": counts.messages_total,
                "last_24h": counts.messages_since,
                "points_today": counts.points_today,
            },
            "device_types": [{"type": t, "count": n} for t, n in sorted(counts.devices_by_type.items())],
        },
    }


@router.get(
    "/telemetry", responses=error_responses(404, *QUERY_ERRORS), summary="Telemetry of all devices, newest first"
)
async def all_telemetry(
    request: Request,
    services: ServicesDep,
    _: AdminDep,
    page: PageQuery = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 100,
    device_id: str | None = None,
    type: str | None = None,
    hours: Annotated[int | None, Query(ge=1, le=24 * 366)] = None,
) -> dict[str, Any]:
    """Counted and listed under the query budget: a count over every message may take long."""
    device = await services.devices.get(device_id) if device_id else None
    messages, total = await run_query(
        request,
        services.settings,
        lambda: services.store.list_messages(
            device_pk=device.pk if device else None,
            msg_type=type,
            since=utcnow() - timedelta(hours=hours) if hours else None,
            limit=per_page,
            offset=(page - 1) * per_page,
        ),
    )
    return {
        "status": "success",
        "telemetry": [telemetry_record(m) for m in messages],
        "pagination": pagination(page, per_page, total),
    }

"""Tenant routes over the tenant's own devices; another tenant's device answers 404."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from telemetra.api.deps import IngestDep, ServicesDep, TenantDep, json_body_doc, read_json
from telemetra.api.errors import error_responses
from telemetra.api.schemas import TelemetryIn, device_public, pagination
from telemetra.domain.timeparse import TimestampError, isoformat, parse_query_time, utcnow
from telemetra.errors import ValidationFailed
from telemetra.store import DeviceFilter

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=error_responses(401, 403))

MAX_POINTS_PER_KEY = 10_000


@router.get("", summary="List the tenant's devices")
async def list_devices(services: ServicesDep, principal: TenantDep,
                       page: Annotated[int, Query(ge=1)] = 1,
                       per_page: Annotated[int, Query(ge=1, le=100)] = 50,
                       status: str | None = None, type: str | None = None,
                       search: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    flt = DeviceFilter(tenant_id=principal.tenant_id, status=status, device_type=type, search=search,
                       limit=per_page, offset=(page - 1) * per_page)
    devices, total = await services.devices.list(flt)
    now, window = utcnow(), services.settings.online_window_s
    return {"status": "success", "devices": [device_public(d, online_window_s=window, now=now) for d in devices],
            "pagination": pagination(page, per_page, total)}


@router.get("/{device_id}", responses=error_responses(404), summary="One of the tenant's devices")
async def get_device(device_id: str, services: ServicesDep, principal: TenantDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    return {"status": "success", "device": device_public(device, online_window_s=services.settings.online_window_s,
                                                         now=utcnow())}


def _query_time(name: str, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_query_time(value)
    except TimestampError as exc:
        raise ValidationFailed(f"'{name}': {exc}", code="invalid_time") from exc


@router.get("/{device_id}/telemetry", responses=error_responses(404, 422), summary="A device's time series")
async def device_telemetry(device_id: str, services: ServicesDep, principal: TenantDep,
                           keys: Annotated[str | None, Query(description="Comma-separated keys; all when absent.")] = None,
                           start: Annotated[str | None, Query(description="Inclusive; ISO date or datetime.")] = None,
                           end: Annotated[str | None, Query(description="Exclusive; ISO date or datetime.")] = None,
                           limit: Annotated[int, Query(ge=1, le=MAX_POINTS_PER_KEY)] = 100,
                           order: Literal["asc", "desc"] = "desc") -> dict[str, Any]:
    """Points per key in [start, end), at most `limit` per key."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    lo, hi = _query_time("start", start), _query_time("end", end)
    if lo is not None and hi is not None and hi <= lo:
        raise ValidationFailed("'end' must be after 'start'", code="invalid_time")
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    series = await services.store.query_points(device.pk, wanted, lo, hi, limit, order == "desc")
    return {"status": "success", "device_id": device.id,
            "telemetry": {key: [{"timestamp": isoformat(ts), "value": v} for ts, v in points]
                          for key, points in series.items()},
            "count": sum(len(points) for points in series.values())}


@router.get("/{device_id}/latest", responses=error_responses(404), summary="A device's latest value per key")
async def device_latest(device_id: str, services: ServicesDep, principal: TenantDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    latest = await services.store.latest_values(device.pk)
    return {"status": "success", "device_id": device.id,
            "latest": {key: {"timestamp": isoformat(ts), "value": v} for key, (ts, v) in latest.items()}}


@router.post("/{device_id}/telemetry", status_code=201, responses=error_responses(400, 404, 413, 415, 422, 503),
             openapi_extra=json_body_doc(TelemetryIn), summary="Send telemetry for a device (gateway)")
async def submit_for_device(device_id: str, request: Request, services: ServicesDep,
                            principal: IngestDep) -> dict[str, Any]:
    """A tenant key (scope `full` or `ingest`) sends a message on behalf of one of its devices."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    doc = await read_json(request, services.settings)
    message = await services.telemetry.accept(device, doc)
    return {"message": "Telemetry data received successfully", "telemetry_id": message.id,
            "device_id": device.id, "timestamp": isoformat(message.ts), "duplicate": message.duplicate}

"""Tenant routes over the tenant's own devices; another tenant's device answers 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from telemetra.analytics.aggregates import rollups_serve
from telemetra.analytics.service import TimeRange
from telemetra.api.answer_schemas import DeviceAnswer, DeviceList, TelemetryAccepted
from telemetra.api.deps import (
    IngestDep,
    ManageDep,
    ReadDep,
    Services,
    ServicesDep,
    json_body_doc,
    read_json,
    read_model,
)
from telemetra.api.errors import answer_doc, error_responses
from telemetra.api.params import PageQuery, key_list, query_time, time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.api.schemas import DevicePassword, TelemetryIn, device_public, pagination
from telemetra.domain.calendar import Interval, parse_interval
from telemetra.domain.models import Device
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.errors import ValidationFailed
from telemetra.store import DeviceFilter

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=error_responses(401, 403, 429))

MAX_POINTS_PER_KEY = 10_000
DEFAULT_AGGREGATE_SPAN = timedelta(days=1)
DEFAULT_RAW_LIMIT = 100


@router.get("", responses=answer_doc(DeviceList), response_model=None, summary="List the tenant's devices")
async def list_devices(
    services: ServicesDep,
    principal: ReadDep,
    page: PageQuery = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    status: str | None = None,
    type: str | None = None,
    search: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    flt = DeviceFilter(
        tenant_id=principal.tenant_id,
        status=status,
        device_type=type,
        search=search,
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    devices, total = await services.devices.list(flt)
    now, window = utcnow(), services.settings.online_window_s
    return {
        "status": "success",
        "devices": [device_public(d, online_window_s=window, now=now) for d in devices],
        "pagination": pagination(page, per_page, total),
    }


@router.get(
    "/{device_id}",
    responses={**answer_doc(DeviceAnswer), **error_responses(404)},
    response_model=None,
    summary="One of the tenant's devices",
)
async def get_device(device_id: str, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    return {
        "status": "success",
        "device": device_public(device, online_window_s=services.settings.online_window_s, now=utcnow()),
    }


@router.get("/{device_id}/telemetry", responses=error_responses(404, *QUERY_ERRORS), summary="A device's time series")
async def device_telemetry(
    request: Request,
    device_id: str,
    services: ServicesDep,
    principal: ReadDep,
    keys: Annotated[str | None, Query(description="Comma-separated keys; all when absent.")] = None,
    start: Annotated[str | None, Query(description="Inclusive; ISO date or datetime.")] = None,
    end: Annotated[str | None, Query(description="Exclusive; ISO date or datetime.")] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_POINTS_PER_KEY, description="Most values per key (raw: 100).")
    ] = None,
    order: Annotated[
        Literal["asc", "desc"] | None, Query(description="Raw points newest first by default; buckets oldest first.")
    ] = None,
    interval: Annotated[
        str | None,
        Query(
            description="Bucket width: 1m, 5m, 15m, 1h, 6h, 1d, 1w, 1mo...; with it, one aggregated value per bucket."
        ),
    ] = None,
    agg: Annotated[
        Literal["none", "avg", "min", "max", "sum", "count"] | None,
        Query(description="Aggregate per bucket (default avg when an interval is given)."),
    ] = None,
    tz: Annotated[
        str | None, Query(description="IANA time zone for buckets and for dates in start/end (default UTC).")
    ] = None,
) -> dict[str, Any]:
    """Raw points per key in [start, end), at most `limit` per key; or, with `interval`, one value per
    calendar bucket in `tz`, labelled by the bucket's start (buckets without data are left out). Raw points
    are bounded by `limit`, whatever the range; buckets by TELEMETRA_QUERY_MAX_RANGE_DAYS (from the hourly
    rollups) or TELEMETRA_QUERY_MAX_RAW_RANGE_DAYS (buckets finer than an hour, or not whole UTC hours)."""
    zone_info = zone(tz)
    wanted = key_list(keys)
    if interval is None and agg in (None, "none"):
        lo, hi = query_time("start", start, zone_info), query_time("end", end, zone_info)
        if lo is not None and hi is not None and hi <= lo:
            raise ValidationFailed("'end' must be after 'start'", code="invalid_time")
        return await run_query(
            request,
            services.settings,
            lambda: _raw_points(
                services, principal.tenant_id, device_id, wanted, lo, hi, limit or DEFAULT_RAW_LIMIT, order != "asc"
            ),
        )
    if agg == "none":
        raise ValidationFailed("an interval needs an aggregate: avg, min, max, sum or count", code="invalid_aggregate")
    step = parse_interval(interval or "1h")
    span = time_range(start, end, zone_info, DEFAULT_AGGREGATE_SPAN)
    check_span(span.start, span.end, services.settings)
    services.analytics.check_buckets(span, step)  # both before rollups_serve, which walks every bucket
    if not rollups_serve(step, zone_info, span.start, span.end):
        check_span(span.start, span.end, services.settings, raw=True)
    device, series = await run_query(
        request,
        services.settings,
        lambda: _buckets(services, principal.tenant_id, device_id, wanted, span, step, agg or "avg", zone_info),
    )
    if order == "desc":
        series = {key: list(reversed(values)) for key, values in series.items()}
    series = {key: values[: limit or MAX_POINTS_PER_KEY] for key, values in series.items()}
    return {
        "status": "success",
        "device_id": device.id,
        "interval": str(step),
        "agg": agg or "avg",
        "tz": str(zone_info),
        "start": isoformat(span.start),
        "end": isoformat(span.end),
        "telemetry": series,
        "count": sum(len(v) for v in series.values()),
    }


async def _raw_points(
    services: Services,
    tenant_id: int,
    device_id: str,
    wanted: list[str] | None,
    lo: Any,
    hi: Any,
    limit: int,
    descending: bool,
) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(tenant_id, device_id)
    series = await services.store.query_points(device.pk, wanted, lo, hi, limit, descending)
    return {
        "status": "success",
        "device_id": device.id,
        "telemetry": {
            key: [{"timestamp": isoformat(ts), "value": v} for ts, v in points] for key, points in series.items()
        },
        "count": sum(len(points) for points in series.values()),
    }


async def _buckets(
    services: Services,
    tenant_id: int,
    device_id: str,
    wanted: list[str] | None,
    span: TimeRange,
    step: Interval,
    how: str,
    zone_info: Any,
) -> tuple[Device, dict[str, list[dict[str, Any]]]]:
    device = await services.devices.get_in_tenant(tenant_id, device_id)
    wanted = wanted or await services.store.numeric_keys(device.pk)
    return device, await services.analytics.series(device, wanted, span, step, how, zone_info)


@router.get("/{device_id}/latest", responses=error_responses(404), summary="A device's latest value per key")
async def device_latest(device_id: str, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    latest = await services.store.latest_values(device.pk)
    return {
        "status": "success",
        "device_id": device.id,
        "latest": {key: {"timestamp": isoformat(ts), "value": v} for key, (ts, v) in latest.items()},
    }


@router.post(
    "/{device_id}/telemetry",
    status_code=201,
    responses={**answer_doc(TelemetryAccepted, 201, "Committed."), **error_responses(400, 404, 413, 415, 422, 503)},
    response_model=None,
    openapi_extra=json_body_doc(TelemetryIn),
    summary="Send telemetry for a device (gateway)",
)
async def submit_for_device(
    device_id: str, request: Request, services: ServicesDep, principal: IngestDep
) -> dict[str, Any]:
    """A tenant key (scope `full` or `ingest`) sends a message on behalf of one of its devices."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    doc = await read_json(request, services.settings)
    message = await services.telemetry.accept(device, doc)
    return {
        "message": "Telemetry data received successfully",
        "telemetry_id": message.id,
        "device_id": device.id,
        "timestamp": isoformat(message.ts),
        "duplicate": message.duplicate,
    }


@router.put(
    "/{device_id}/credentials",
    responses=error_responses(400, 404, 413, 415, 422),
    openapi_extra=json_body_doc(DevicePassword),
    summary="Set a device's login password (seed 003)",
)
async def set_device_password(
    device_id: str, request: Request, services: ServicesDep, principal: ManageDep
) -> dict[str, Any]:
    """Set or change the password the device logs in with at `POST /auth/login`; earlier tokens stop working."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    body = await read_model(request, services.settings, DevicePassword)
    await services.login.set_password(device, body.password)
    return {"message": "Device password set", "device_id": device.id}

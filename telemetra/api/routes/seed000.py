"""Seed 000's contract (an IoT objects API and its edge pre-processing), over the tenant's own devices.

An object is a device, a client is a tenant (named by its unique name), the key goes in ``x-api-key``.
A client never sees another client's objects: their ids and ``by_client/<other>`` answer 404.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telemetra.api.deps import Services, ServicesDep, TenantDep
from telemetra.api.errors import error_responses
from telemetra.analytics.service import TimeRange
from telemetra.api.params import time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.api.routes.analytics import resolve_key, tenant_devices
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.thresholds import parse_thresholds
from telemetra.domain.timeparse import isoformat
from telemetra.errors import NotFound
from telemetra.registry.auth import Principal

router = APIRouter(tags=["seed 000: IoT objects"], responses=error_responses(401, 403, 429))

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
DEFAULT_SPAN = timedelta(days=7)
MAX_ANOMALIES = 100
# Raw values are scanned for anomalies newest first, this many at a time: memory stays bounded on any range.
ANOMALY_SCAN_PAGE = 5000
KeyQ = Annotated[str | None, Query(description="The measured key (default: the object's main key).")]
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class ClientNotFound(NotFound):
    code = "client_not_found"
    default_message = "No such client for this key."


async def _client_name(services: Services, principal: Principal) -> str:
    return (await services.store.get_tenant(principal.tenant_id)).name


def _object(device: Device, client: str) -> dict[str, Any]:
    return {"id": device.id, "client": client, "type": device.device_type}


async def _own_client(services: Services, principal: Principal, client_id: str | None) -> str:
    name = await _client_name(services, principal)
    if client_id is not None and client_id != name:
        raise ClientNotFound()  # another client's name is answered exactly like a name that does not exist
    return name


@router.get("/iot_objects", summary="The client's objects")
async def iot_objects(services: ServicesDep, principal: TenantDep) -> list[dict[str, Any]]:
    client = await _client_name(services, principal)
    return [_object(d, client) for d in await tenant_devices(services, principal.tenant_id)]


@router.get("/iot_objects/by_client/{client}", responses=error_responses(404), summary="A client's objects")
async def iot_objects_by_client(client: str, services: ServicesDep, principal: TenantDep) -> list[dict[str, Any]]:
    name = await _own_client(services, principal, client)
    return [_object(d, name) for d in await tenant_devices(services, principal.tenant_id)]


@router.get("/iot_objects/{object_id}", responses=error_responses(404), summary="One object and its latest values")
async def iot_object(object_id: str, services: ServicesDep, principal: TenantDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    latest = await services.store.latest_values(device.pk)
    newest = max((ts for ts, _ in latest.values()), default=None)
    return {**_object(device, await _client_name(services, principal)),
            "metrics": {key: value for key, (_, value) in latest.items()}, "timestamp": isoformat(newest)}


async def _measured(services: Services, device: Device, key: str | None, limit: int) -> tuple[str, list]:
    chosen = await resolve_key(services, device, key)
    points = (await services.store.query_points(device.pk, [chosen], None, None, limit, True)).get(chosen, [])
    return chosen, points


@router.get("/iot_objects/{object_id}/history", responses=error_responses(404, 422),
            summary="An object's values, newest first")
async def iot_object_history(object_id: str, services: ServicesDep, principal: TenantDep, key: KeyQ = None,
                             limit: LimitQ = DEFAULT_LIMIT) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    chosen, points = await _measured(services, device, key, limit)
    return {**_object(device, await _client_name(services, principal)), "key": chosen,
            "history": [{"timestamp": isoformat(ts), "value": v} for ts, v in points]}


@router.get("/iot_data/{object_id}", responses=error_responses(404, 422), summary="An object's measurements")
async def iot_data(object_id: str, services: ServicesDep, principal: TenantDep, key: KeyQ = None,
                   limit: LimitQ = DEFAULT_LIMIT) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    chosen, points = await _measured(services, device, key, limit)
    return {**_object(device, await _client_name(services, principal)),
            "measurements": [{"timestamp": isoformat(ts), "key": chosen, "value": v} for ts, v in points]}


def _summary(agg: Aggregate | None) -> dict[str, float | None]:
    if agg is None:
        return {"average": None, "max": None, "min": None}
    return {"average": agg.mean, "max": agg.max, "min": agg.min}


@router.get("/processed_data", responses=error_responses(404, *QUERY_ERRORS),
            summary="An object's statistics and anomalies")
async def processed_data(request: Request, services: ServicesDep, principal: TenantDep,
                         object_id: Annotated[str, Query(min_length=1)], key: KeyQ = None,
                         start: str | None = None, end: str | None = None, tz: str | None = None) -> dict[str, Any]:
    """average/max/min of the key in [start, end) (default: the last 7 days; at most
    TELEMETRA_QUERY_MAX_RANGE_DAYS), and its anomalies: the alerts the object's rules raised in that range
    (newest first), and the values outside the key's range in TELEMETRA_ANOMALY_THRESHOLDS (at most 100)."""
    span = time_range(start, end, zone(tz), DEFAULT_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(request, services.settings, lambda: _processed(services, principal, object_id, key, span))


async def _processed(services: Services, principal: Principal, object_id: str, key: str | None,
                     span: TimeRange) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    chosen = await resolve_key(services, device, key)
    agg = await services.analytics.device_stats(device, chosen, span)
    raised, _ = await services.store.alerts.list_alerts(principal.tenant_id, device_pk=device.pk, since=span.start,
                                                        limit=MAX_ANOMALIES)
    anomalies: list[dict[str, Any]] = [
        {"timestamp": isoformat(a.last_ts), "key": a.key or None, "value": a.last_value, "alert_id": a.id,
         "rule": a.rule_name, "severity": a.severity, "status": a.status, "count": a.count, "message": a.message}
        for a in raised if a.first_ts < span.end]
    threshold = parse_thresholds(services.settings.anomaly_thresholds).get(chosen)
    if threshold is not None and agg is not None and (threshold.breached(agg.min) or threshold.breached(agg.max)):
        before = span.end
        while len(anomalies) < MAX_ANOMALIES:
            page = (await services.store.query_points(device.pk, [chosen], span.start, before, ANOMALY_SCAN_PAGE,
                                                      True)).get(chosen, [])
            for ts, value in page:
                if isinstance(value, (int, float)) and not isinstance(value, bool) and threshold.breached(value):
                    anomalies.append({"timestamp": isoformat(ts), "key": chosen, "value": value,
                                      "threshold": threshold.describe()})
                    if len(anomalies) >= MAX_ANOMALIES:
                        break
            if len(page) < ANOMALY_SCAN_PAGE:
                break
            before = page[-1][0]
    return {"object_id": device.id, "key": chosen, "statistics": _summary(agg), "anomalies": anomalies}


@router.get("/client_statistics", responses=error_responses(404, *QUERY_ERRORS),
            summary="Statistics over the client's objects")
async def client_statistics(request: Request, services: ServicesDep, principal: TenantDep,
                            client_id: Annotated[str | None, Query(description="Only your own client.")] = None,
                            key: Annotated[str | None, Query(description="The key (default: each object's main key).")] = None,
                            start: str | None = None, end: str | None = None, tz: str | None = None) -> dict[str, Any]:
    """average/max/min over all the client's objects in [start, end) (default: the last 7 days; at most
    TELEMETRA_QUERY_MAX_RANGE_DAYS)."""
    span = time_range(start, end, zone(tz), DEFAULT_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(request, services.settings, lambda: _client_statistics(services, principal, client_id,
                                                                                   key, span))


async def _client_statistics(services: Services, principal: Principal, client_id: str | None, key: str | None,
                             span: TimeRange) -> dict[str, Any]:
    name = await _own_client(services, principal, client_id)
    devices = await tenant_devices(services, principal.tenant_id)
    if key:
        overall, _ = await services.analytics.tenant_stats(devices, key, span)
        return {"client_id": name, "statistics": _summary(overall)}
    overall: Aggregate | None = None
    for device in devices:
        chosen = await services.analytics.main_key(device)
        agg = await services.analytics.device_stats(device, chosen, span) if chosen else None
        if agg is not None:
            overall = agg if overall is None else overall.merge(agg)
    return {"client_id": name, "statistics": _summary(overall)}

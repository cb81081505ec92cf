"""Seed 000's contract (document ``000_99ab727b26c44e7a``): an IoT objects API and its edge pre-processing.

The shape kept: ``GET /iot_objects``, ``/iot_objects/by_client/{client}``, ``/iot_objects/{id}``,
``/iot_objects/{id}/history``, ``/iot_data/{id}`` (objects ``{"id", "client", "type"}``, measurements
``{"timestamp", "key", "value"}``), and the edge server's ``/processed_data?object_id=`` and
``/client_statistics`` (``{"statistics": {"average", "max", "min"}}``), with the key in ``x-api-key``.
An object is a device, a client is a tenant (named by its unique name). A client never sees another client's
objects: their ids and ``by_client/<other>`` answer 404. Statistics and anomalies come from the analytics
service; this module only translates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telemetra.analytics.anomalies import Anomaly
from telemetra.analytics.service import TimeRange
from telemetra.api.deps import ReadDep, Services, ServicesDep
from telemetra.api.errors import error_responses
from telemetra.api.params import time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.timeparse import isoformat
from telemetra.errors import NotFound
from telemetra.registry.auth import TenantCaller

router = APIRouter(tags=["seed 000: IoT objects"], responses=error_responses(401, 403, 429))

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
DEFAULT_SPAN = timedelta(days=7)
KeyQ = Annotated[str | None, Query(description="The measured key (default: the object's main key).")]
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class ClientNotFound(NotFound):
    code = "client_not_found"
    default_message = "No such client for this key."


async def _client_name(services: Services, principal: TenantCaller) -> str:
    return (await services.tenants.get(principal.tenant_id)).name


def _object(device: Device, client: str) -> dict[str, Any]:
    return {"id": device.id, "client": client, "type": device.device_type}


async def _own_client(services: Services, principal: TenantCaller, client_id: str | None) -> str:
    name = await _client_name(services, principal)
    if client_id is not None and client_id != name:
        raise ClientNotFound()  # another client's name is answered exactly like a name that does not exist
    return name


@router.get("/iot_objects", summary="The client's objects")
async def iot_objects(services: ServicesDep, principal: ReadDep) -> list[dict[str, Any]]:
    client = await _client_name(services, principal)
    return [_object(d, client) for d in await services.devices.in_tenant(principal.tenant_id)]


@router.get("/iot_objects/by_client/{client}", responses=error_responses(404), summary="A client's objects")
async def iot_objects_by_client(client: str, services: ServicesDep, principal: ReadDep) -> list[dict[str, Any]]:
    name = await _own_client(services, principal, client)
    return [_object(d, name) for d in await services.devices.in_tenant(principal.tenant_id)]


@router.get("/iot_objects/{object_id}", responses=error_responses(404), summary="One object and its latest values")
async def iot_object(object_id: str, services: ServicesDep, principal: ReadDep) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    latest = await services.analytics.latest_values(device)
    newest = max((ts for ts, _ in latest.values()), default=None)
    return {
        **_object(device, await _client_name(services, principal)),
        "metrics": {key: value for key, (_, value) in latest.items()},
        "timestamp": isoformat(newest),
    }


@router.get(
    "/iot_objects/{object_id}/history", responses=error_responses(404, 422), summary="An object's values, newest first"
)
async def iot_object_history(
    object_id: str, services: ServicesDep, principal: ReadDep, key: KeyQ = None, limit: LimitQ = DEFAULT_LIMIT
) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    chosen, points = await services.analytics.recent_values(device, key, limit)
    return {
        **_object(device, await _client_name(services, principal)),
        "key": chosen,
        "history": [{"timestamp": isoformat(ts), "value": v} for ts, v in points],
    }


@router.get("/iot_data/{object_id}", responses=error_responses(404, 422), summary="An object's measurements")
async def iot_data(
    object_id: str, services: ServicesDep, principal: ReadDep, key: KeyQ = None, limit: LimitQ = DEFAULT_LIMIT
) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    chosen, points = await services.analytics.recent_values(device, key, limit)
    return {
        **_object(device, await _client_name(services, principal)),
        "measurements": [{"timestamp": isoformat(ts), "key": chosen, "value": v} for ts, v in points],
    }


def _summary(agg: Aggregate | None) -> dict[str, float | None]:
    if agg is None:
        return {"average": None, "max": None, "min": None}
    return {"average": agg.mean, "max": agg.max, "min": agg.min}


def _anomaly(found: Anomaly) -> dict[str, Any]:
    head = {"timestamp": isoformat(found.timestamp), "key": found.key, "value": found.value}
    if found.alert is not None:
        a = found.alert
        return {
            **head,
            "alert_id": a.id,
            "rule": a.rule_name,
            "severity": a.severity,
            "status": a.status,
            "count": a.count,
            "message": a.message,
        }
    return {**head, "threshold": found.threshold.describe() if found.threshold else None}


@router.get(
    "/processed_data", responses=error_responses(404, *QUERY_ERRORS), summary="An object's statistics and anomalies"
)
async def processed_data(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    object_id: Annotated[str, Query(min_length=1)],
    key: KeyQ = None,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """average/max/min of the key in [start, end) (default: the last 7 days; at most
    TELEMETRA_QUERY_MAX_RANGE_DAYS), and its anomalies: the alerts the object's rules raised in that range
    (newest first), and the values outside the key's range in TELEMETRA_ANOMALY_THRESHOLDS (at most 100)."""
    span = time_range(start, end, zone(tz), DEFAULT_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(request, services.settings, lambda: _processed(services, principal, object_id, key, span))


async def _processed(
    services: Services, principal: TenantCaller, object_id: str, key: str | None, span: TimeRange
) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(principal.tenant_id, object_id)
    summary = await services.analytics.summary(device, key, span)
    return {
        "object_id": device.id,
        "key": summary.key,
        "statistics": _summary(summary.stats),
        "anomalies": [_anomaly(a) for a in summary.anomalies],
    }


@router.get(
    "/client_statistics", responses=error_responses(404, *QUERY_ERRORS), summary="Statistics over the client's objects"
)
async def client_statistics(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    client_id: Annotated[str | None, Query(description="Only your own client.")] = None,
    key: Annotated[str | None, Query(description="The key (default: each object's main key).")] = None,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """average/max/min over all the client's objects in [start, end) (default: the last 7 days; at most
    TELEMETRA_QUERY_MAX_RANGE_DAYS)."""
    span = time_range(start, end, zone(tz), DEFAULT_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(
        request, services.settings, lambda: _client_statistics(services, principal, client_id, key, span)
    )


async def _client_statistics(
    services: Services, principal: TenantCaller, client_id: str | None, key: str | None, span: TimeRange
) -> dict[str, Any]:
    name = await _own_client(services, principal, client_id)
    overall = await services.analytics.tenant_summary(principal.tenant_id, key, span)
    return {"client_id": name, "statistics": _summary(overall)}

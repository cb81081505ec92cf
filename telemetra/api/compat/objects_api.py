"""Seed 000's contract (document ``000_99ab727b26c44e7a``): an IoT objects API and its edge pre-processing.

The shape kept: ``GET /iot_objects``, ``/iot_objects/by_client/{client}``, ``/iot_objects/{id}``,
``/iot_objects/{id}/history``, ``/iot_data/{id}`` (objects ``{"id", "client", "type"}``, measurements
``{"timestamp", "key", "value"}``), and the edge server's ``/processed_data?object_id=`` and
``/client_statistics`` (``{"statistics": {"average", "max", "min"}}``), with the key in ``x-api-key``.
An object is a device, a client is a tenant (named by its unique name). A client never sees another client's
objects: their ids and ``by_client/<other>`` answer 404. Statistics and anomalies come from the analytics
service; this module only translates.

Seed 000's own edge code sends no key to the objects API. ``TELEMETRA_OBJECTS_API_OPEN`` lists the clients whose
objects the five read routes above serve without one (off by default); everything else keyless is answered
401 as when the mode is off, and a key, when sent, is checked as always.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from telemetra.analytics.anomalies import Anomaly
from telemetra.analytics.service import TimeRange
from telemetra.api.deps import (
    SESSION_COOKIE,
    ReadDep,
    Services,
    ServicesDep,
    api_key_header,
    enforce_rate_limit,
    identify,
)
from telemetra.api.errors import error_responses
from telemetra.api.params import time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.timeparse import isoformat
from telemetra.errors import DeviceNotFound, NotFound, Unauthorized
from telemetra.registry.auth import TenantCaller
from telemetra.registry.roles import require_permission
from telemetra.settings import Settings

logger = logging.getLogger(__name__)
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


@dataclass(frozen=True, slots=True)
class _Reader:
    """Whose objects a request may read: the key's own client, or (keyless, in open mode) the open clients."""

    clients: dict[int, str]  # tenant id -> client name
    keyless: bool

    def closed(self) -> Unauthorized:
        # Keyless, anything outside the open clients is answered as if the mode were off: no existence leaks.
        return Unauthorized("An API key is required; send it in the X-API-Key header.", code="missing_api_key")

    async def device(self, request: Request, services: Services, object_id: str) -> tuple[Device, str]:
        """The object and its client name; 404 for another client's (keyed), 401 outside the open clients."""
        if not self.keyless:
            [(tenant_id, client)] = self.clients.items()
            return await services.devices.get_in_tenant(tenant_id, object_id), client
        try:
            device = await services.devices.get(object_id)
        except DeviceNotFound:
            raise self.closed() from None
        if device.tenant_id not in self.clients:
            raise self.closed()
        await enforce_rate_limit(request, services, "tenant", tenant_id=device.tenant_id, device_pk=None)
        return device, self.clients[device.tenant_id]


def open_clients(settings: Settings) -> list[str]:
    """The client names TELEMETRA_OBJECTS_API_OPEN exposes without a key (empty: the mode is off)."""
    return [name for name in settings.objects_api_open.split(",") if name]


def warn_if_open(settings: Settings) -> None:
    """Say at start, as a warning, that some clients' objects are readable by anyone who can reach the server."""
    names = open_clients(settings)
    if names:
        logger.warning(
            "TELEMETRA_OBJECTS_API_OPEN: the objects of %s are readable without a key at /iot_objects and "
            "/iot_data (read-only)",
            ", ".join(names),
        )


async def _reader(
    request: Request, services: ServicesDep, key: Annotated[str | None, Depends(api_key_header)]
) -> _Reader:
    names = open_clients(services.settings)
    # A key or a session is always checked: an invalid one is refused even in open mode.
    if key or request.cookies.get(SESSION_COOKIE) or not names:
        principal = require_permission(await identify(request, services, key), "read")
        return _Reader({principal.tenant_id: await _client_name(services, principal)}, keyless=False)
    return _Reader({t.id: t.name for t in await services.tenants.named(names)}, keyless=True)


ReaderDep = Annotated[_Reader, Depends(_reader)]


@router.get("/iot_objects", summary="The client's objects")
async def iot_objects(request: Request, services: ServicesDep, reader: ReaderDep) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for tenant_id, client in reader.clients.items():
        if reader.keyless:
            await enforce_rate_limit(request, services, "tenant", tenant_id=tenant_id, device_pk=None)
        found += [_object(d, client) for d in await services.devices.in_tenant(tenant_id)]
    return found


@router.get("/iot_objects/by_client/{client}", responses=error_responses(404), summary="A client's objects")
async def iot_objects_by_client(
    client: str, request: Request, services: ServicesDep, reader: ReaderDep
) -> list[dict[str, Any]]:
    tenant_id = next((tid for tid, name in reader.clients.items() if name == client), None)
    if tenant_id is None:
        # another client's name is answered exactly like a name that does not exist
        raise reader.closed() if reader.keyless else ClientNotFound()
    if reader.keyless:
        await enforce_rate_limit(request, services, "tenant", tenant_id=tenant_id, device_pk=None)
    return [_object(d, client) for d in await services.devices.in_tenant(tenant_id)]


@router.get("/iot_objects/{object_id}", responses=error_responses(404), summary="One object and its latest values")
async def iot_object(object_id: str, request: Request, services: ServicesDep, reader: ReaderDep) -> dict[str, Any]:
    device, client = await reader.device(request, services, object_id)
    latest = await services.analytics.latest_values(device)
    newest = max((ts for ts, _ in latest.values()), default=None)
    return {
        **_object(device, client),
        "metrics": {key: value for key, (_, value) in latest.items()},
        "timestamp": isoformat(newest),
    }


@router.get(
    "/iot_objects/{object_id}/history", responses=error_responses(404, 422), summary="An object's values, newest first"
)
async def iot_object_history(
    object_id: str,
    request: Request,
    services: ServicesDep,
    reader: ReaderDep,
    key: KeyQ = None,
    limit: LimitQ = DEFAULT_LIMIT,
) -> dict[str, Any]:
    device, client = await reader.device(request, services, object_id)
    chosen, points = await services.analytics.recent_values(device, key, limit)
    return {
        **_object(device, client),
        "key": chosen,
        "history": [{"timestamp": isoformat(ts), "value": v} for ts, v in points],
    }


@router.get("/iot_data/{object_id}", responses=error_responses(404, 422), summary="An object's measurements")
async def iot_data(
    object_id: str,
    request: Request,
    services: ServicesDep,
    reader: ReaderDep,
    key: KeyQ = None,
    limit: LimitQ = DEFAULT_LIMIT,
) -> dict[str, Any]:
    device, client = await reader.device(request, services, object_id)
    chosen, points = await services.analytics.recent_values(device, key, limit)
    return {
        **_object(device, client),
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

"""Statistics per device and per tenant (client), and the energy report; a tenant sees only its own devices."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from telemetra.analytics.service import TimeRange, stats_json
from telemetra.api.deps import ReadDep, Services, ServicesDep
from telemetra.api.errors import error_responses
from telemetra.api.params import time_range, zone
from telemetra.api.queries import QUERY_ERRORS, check_span, run_query
from telemetra.api.reports import energy_report
from telemetra.domain.timeparse import isoformat
from telemetra.errors import ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["analytics"], responses=error_responses(401, 403, 429, *QUERY_ERRORS))

DEFAULT_STATS_SPAN = timedelta(days=1)
DEFAULT_REPORT_SPAN = timedelta(days=1)
StartQ = Annotated[
    str | None,
    Query(
        description="Inclusive; ISO date (midnight in tz) or datetime. At most "
        "TELEMETRA_QUERY_MAX_RANGE_DAYS (366) before `end`."
    ),
]
EndQ = Annotated[str | None, Query(description="Exclusive; ISO date or datetime; default now.")]
TzQ = Annotated[str | None, Query(description="IANA time zone (default UTC).")]


@router.get("/devices/{device_id}/stats", responses=error_responses(404), summary="Statistics of one device")
async def device_stats(
    request: Request,
    device_id: str,
    services: ServicesDep,
    principal: ReadDep,
    key: Annotated[str | None, Query(description="Key (default: the device's main key).")] = None,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
) -> dict[str, Any]:
    """count, average, min, max, stddev (population), first and last value of `key` in [start, end)
    (default: the last 24 hours)."""
    span = time_range(start, end, zone(tz), DEFAULT_STATS_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(
        request, services.settings, lambda: _device_stats(services, principal.tenant_id, device_id, key, span)
    )


async def _device_stats(
    services: Services, tenant_id: int, device_id: str, key: str | None, span: TimeRange
) -> dict[str, Any]:
    device = await services.devices.get_in_tenant(tenant_id, device_id)
    chosen = await services.analytics.resolve_key(device, key)
    agg = await services.analytics.device_stats(device, chosen, span)
    return {
        "status": "success",
        "device_id": device.id,
        "key": chosen,
        "start": isoformat(span.start),
        "end": isoformat(span.end),
        "stats": stats_json(agg),
    }


@router.get("/stats", summary="Statistics of all the tenant's devices")
async def tenant_stats(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    key: Annotated[str, Query(min_length=1, max_length=128, description="The key to summarise.")],
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
) -> dict[str, Any]:
    """The statistics of `key` over every device of the tenant together, and per device (those with data)."""
    span = time_range(start, end, zone(tz), DEFAULT_STATS_SPAN)
    check_span(span.start, span.end, services.settings)
    return await run_query(request, services.settings, lambda: _tenant_stats(services, principal.tenant_id, key, span))


async def _tenant_stats(services: Services, tenant_id: int, key: str, span: TimeRange) -> dict[str, Any]:
    devices = await services.devices.in_tenant(tenant_id)
    overall, per_device = await services.analytics.tenant_stats(devices, key, span)
    tenant = await services.tenants.get(tenant_id)
    return {
        "status": "success",
        "client": tenant.name,
        "key": key,
        "start": isoformat(span.start),
        "end": isoformat(span.end),
        "stats": stats_json(overall),
        "devices": {device_id: stats_json(agg) for device_id, agg in sorted(per_device.items())},
    }


@router.get("/reports/energy", responses=error_responses(404), summary="Energy per hour (Wh)")
async def energy(
    request: Request,
    services: ServicesDep,
    principal: ReadDep,
    start: StartQ = None,
    end: EndQ = None,
    tz: TzQ = None,
    device: Annotated[str | None, Query(description="One device (default: all the tenant's).")] = None,
    key: Annotated[str, Query(description="The power key, in W.")] = "instant_power",
    format: Annotated[
        Literal["days", "list"], Query(description='`days`: {date: {"HH:00": Wh}}; `list`: one item per real hour.')
    ] = "days",
) -> Any:
    """Energy per local hour: the integral of the power, each value holding until the next (at most
    TELEMETRA_ENERGY_MAX_HOLD_S). `days` leaves out hours with no known power and sums the two parts of the
    hour repeated when clocks go back; `list` gives every hour with its offset and the covered share."""
    if key not in {k.strip() for k in services.settings.energy_keys.split(",")}:
        raise ValidationFailed(
            f"'{key}' is not a power key kept as energy (TELEMETRA_ENERGY_KEYS)", code="not_an_energy_key"
        )
    report = await energy_report(
        request,
        services,
        principal.tenant_id,
        start=start,
        end=end,
        tz=tz,
        device=device,
        key=key,
        default_span=DEFAULT_REPORT_SPAN,
    )
    return report.by_day() if format == "days" else report.as_list()

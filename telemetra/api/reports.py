"""The hourly reports shared by the core routes and the compatibility adapters, run within the query bounds:
the range checked before any work (against the raw limit too when the answer comes from raw points), then
the service's reads under the time budget (``api/queries.py``)."""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request

from telemetra.analytics.energy import EnergyReport, reads_raw_samples
from telemetra.api.deps import Services
from telemetra.api.params import time_range, zone
from telemetra.api.queries import check_span, run_query
from telemetra.domain.calendar import HOUR, hourly_composable

__all__ = ["energy_report", "mean_by_local_hour"]


async def energy_report(
    request: Request,
    services: Services,
    tenant_id: int,
    *,
    start: str | None,
    end: str | None,
    tz: str | None,
    device: str | None,
    key: str,
    default_span: timedelta,
) -> EnergyReport:
    """The energy report of ``key``, of the tenant's ``device`` or of all its devices."""
    zone_info = zone(tz)
    span = time_range(start, end, zone_info, default_span)
    check_span(span.start, span.end, services.settings)  # first: telling whether it is raw walks every hour
    if reads_raw_samples(zone_info, span.start, span.end):
        check_span(span.start, span.end, services.settings, raw=True)
    return await run_query(
        request,
        services.settings,
        lambda: services.analytics.energy_report(tenant_id, span, zone_info, key=key, device_id=device),
    )


async def mean_by_local_hour(
    request: Request,
    services: Services,
    tenant_id: int,
    *,
    start: str | None,
    end: str | None,
    tz: str | None,
    device: str | None,
    key: str,
    default_span: timedelta,
) -> dict[str, dict[str, float]]:
    """The mean of ``key`` per local hour, over the tenant's ``device`` or all its devices."""
    zone_info = zone(tz)
    span = time_range(start, end, zone_info, default_span)
    check_span(span.start, span.end, services.settings)  # before hourly_composable, which walks every hour
    composable = hourly_composable(zone_info, span.start, span.end, HOUR)
    if not composable:
        check_span(span.start, span.end, services.settings, raw=True)
    return await run_query(
        request,
        services.settings,
        lambda: services.analytics.mean_by_local_hour(
            tenant_id, key, span, zone_info, composable=composable, device_id=device
        ),
    )

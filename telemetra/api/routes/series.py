"""A device's chart in one call: mean, min, max and count of one key per bucket, at most 2,000 buckets.

Buckets of an hour or more come from the hourly rollups (exact: the partial hours at the range's edges,
and what is after the rollups' seal mark, from raw points), shorter ones from the raw points, each
aggregated by the database in one statement (``store/console_reads.py``): the answer is never more than
the buckets, whatever the data's rate. Buckets are UTC, aligned
on the epoch; the console shows them in the viewer's zone.

Needs the permission `read` (role `viewer` or higher).
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from telemetra.api.deps import ReadDep, ServicesDep
from telemetra.api.errors import error_responses
from telemetra.api.params import time_range
from telemetra.api.queries import QUERY_ERRORS, check_span, max_span, run_query
from telemetra.domain.timeparse import isoformat
from telemetra.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/devices", tags=["console"], responses=error_responses(401, 403, 429))

MAX_SERIES_BUCKETS = 2000
HOUR_S = 3600
# Widths `auto` chooses from: the smallest that gives at most MAX_SERIES_BUCKETS buckets.
AUTO_WIDTHS_S = (60, 300, 900, 1800, HOUR_S, 3 * HOUR_S, 6 * HOUR_S, 12 * HOUR_S, 86_400, 7 * 86_400, 30 * 86_400)
NAMED_WIDTHS_S = {"1m": 60, "5m": 300, "15m": 900, "1h": HOUR_S, "6h": 6 * HOUR_S, "1d": 86_400}
DEFAULT_SPAN = timedelta(hours=24)


def bucket_width_s(interval: str, span: timedelta, *, min_auto_s: int = 0) -> int:
    """The width of the buckets asked for (or chosen by ``auto``, ``min_auto_s`` at least); 422 past
    MAX_SERIES_BUCKETS buckets."""
    seconds = span.total_seconds()
    if interval == "auto":
        for width in AUTO_WIDTHS_S:
            if width >= min_auto_s and seconds / width <= MAX_SERIES_BUCKETS:
                return width
        width = AUTO_WIDTHS_S[-1]
    else:
        width = NAMED_WIDTHS_S[interval]
    if seconds / width > MAX_SERIES_BUCKETS:
        raise ValidationFailed(
            f"more than {MAX_SERIES_BUCKETS} buckets of {interval}; choose a larger interval or a shorter range",
            code="too_many_buckets",
        )
    return width


@router.get(
    "/{device_id}/series",
    responses=error_responses(404, 422, *QUERY_ERRORS),
    summary="One key of a device per bucket: mean, min, max, count",
)
async def device_series(
    request: Request,
    device_id: str,
    services: ServicesDep,
    principal: ReadDep,
    key: Annotated[str, Query(min_length=1, max_length=200, description="The key to chart.")],
    start: Annotated[
        str | None, Query(max_length=64, description="Inclusive; ISO 8601 (default: a day before end).")
    ] = None,
    end: Annotated[str | None, Query(max_length=64, description="Exclusive; ISO 8601 (default: now).")] = None,
    interval: Literal["auto", "1m", "5m", "15m", "1h", "6h", "1d"] = "auto",
) -> dict[str, Any]:
    """Buckets with data only, oldest first, labelled by their start (UTC); `auto` picks the finest width
    (1 minute to 30 days) that gives at most 2,000 buckets. The range is bounded by
    TELEMETRA_QUERY_MAX_RANGE_DAYS, and by TELEMETRA_QUERY_MAX_RAW_RANGE_DAYS for buckets under an hour
    (computed from raw points)."""
    span = time_range(start, end, timezone.utc, DEFAULT_SPAN)
    check_span(span.start, span.end, services.settings)
    # Past the raw range limit, `auto` keeps to the rollups (an hour or more) rather than refuse.
    too_wide_for_raw = span.end - span.start > max_span(services.settings, raw=True)
    width = bucket_width_s(interval, span.end - span.start, min_auto_s=HOUR_S if too_wide_for_raw else 0)
    if width < HOUR_S:
        check_span(span.start, span.end, services.settings, raw=True)

    async def read() -> dict[str, Any]:
        device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
        reads = services.store.console
        read_buckets = reads.point_buckets if width < HOUR_S else reads.hour_buckets
        rows = await read_buckets(device.pk, key, span.start, span.end, width)
        buckets = [
            {"t": isoformat(t), "mean": total / count, "min": low, "max": high, "count": count}
            for t, count, total, low, high in rows
        ]
        return {"device_id": device.id, "key": key, "interval_s": width, "buckets": buckets}

    return await run_query(request, services.settings, read)

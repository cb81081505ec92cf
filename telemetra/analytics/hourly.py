"""The mean of a key per local hour over some devices (seed 001's temperature report), in any time zone."""

from __future__ import annotations

from datetime import datetime, tzinfo

from telemetra.analytics.aggregates import device_pieces
from telemetra.domain.rollup import Aggregate
from telemetra.store import Store

__all__ = ["mean_by_local_hour"]


async def mean_by_local_hour(
    store: Store, device_pks: list[int], key: str, start: datetime, end: datetime, tz: tzinfo, *, composable: bool
) -> dict[str, dict[str, float]]:
    """``{"YYYY-MM-DD": {"HH:00": mean}}`` of ``key`` in [start, end) over the devices, hours without a value
    left out. ``composable``: every local hour of ``tz`` is a whole UTC hour over the range
    (``hourly_composable``), so that the hourly rollups serve."""
    if composable:
        pieces = [p for per in (await device_pieces(store, device_pks, key, start, end)).values() for p in per]
    else:  # a UTC hour straddles two local hours: read the raw points
        pieces = [
            (ts, Aggregate.of(ts, v)) for pk in device_pks for ts, v in await store.numeric_series(pk, key, start, end)
        ]
    hours: dict[tuple[str, str], Aggregate] = {}
    for when, agg in pieces:
        local = when.astimezone(tz)
        label = (local.date().isoformat(), f"{local.hour:02d}:00")  # a repeated hour's two parts merge
        hours[label] = hours[label].merge(agg) if label in hours else agg
    out: dict[str, dict[str, float]] = {}
    for (day, hour), agg in sorted(hours.items()):
        out.setdefault(day, {})[hour] = round(agg.mean, 3)
    return out

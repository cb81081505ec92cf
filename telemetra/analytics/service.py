"""Time-series queries and statistics for devices and tenants (the API's and the seed routes' one core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from telemetra.analytics.aggregates import bucketed, device_pieces, device_totals, rollups_serve
from telemetra.domain.calendar import Interval
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.timeparse import isoformat
from telemetra.errors import ValidationFailed
from telemetra.store import Store

__all__ = ["AnalyticsService", "AGGREGATES", "TimeRange"]

AGGREGATES = ("avg", "min", "max", "sum", "count")
MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime


def _value(agg: Aggregate, how: str) -> float | int:
    return {"avg": agg.mean, "min": agg.min, "max": agg.max, "sum": agg.sum, "count": agg.count}[how]


def stats_json(agg: Aggregate | None) -> dict[str, Any]:
    """count, average, min, max, stddev (population), first and last of a range; zeros and nulls when empty."""
    if agg is None:
        return {"count": 0, "average": None, "min": None, "max": None, "stddev": None, "first": None, "last": None}
    return {"count": agg.count, "average": agg.mean, "min": agg.min, "max": agg.max, "stddev": agg.stddev,
            "first": {"timestamp": isoformat(agg.first[0]), "value": agg.first[1]},
            "last": {"timestamp": isoformat(agg.last[0]), "value": agg.last[1]}}


class AnalyticsService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def series(self, device: Device, keys: list[str], span: TimeRange, interval: Interval, how: str,
                     tz: tzinfo) -> dict[str, list[dict[str, Any]]]:
        """Per key, one value per calendar bucket with data, labelled by the bucket's start in ``tz``."""
        self.check_buckets(span, interval)
        out: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            if rollups_serve(interval, tz, span.start, span.end):
                pieces = (await device_pieces(self._store, [device.pk], key, span.start, span.end)).get(device.pk, [])
            else:
                pieces = [(ts, Aggregate.from_values([(ts, v)]))
                          for ts, v in await self._store.numeric_series(device.pk, key, span.start, span.end)]
            buckets = bucketed(pieces, interval, tz)
            if buckets:
                out[key] = [{"timestamp": isoformat(start.astimezone(tz)), "value": _value(agg, how)}
                            for start, agg in buckets.items()]
        return out

    @staticmethod
    def check_buckets(span: TimeRange, interval: Interval) -> None:
        """422 ``too_many_buckets`` past MAX_BUCKETS buckets of ``interval`` over ``span``."""
        if span.end - span.start > interval.nominal * MAX_BUCKETS:
            raise ValidationFailed(f"more than {MAX_BUCKETS} buckets of {interval}; choose a larger interval or "
                                   "a shorter range", code="too_many_buckets")

    async def device_stats(self, device: Device, key: str, span: TimeRange) -> Aggregate | None:
        return (await device_totals(self._store, [device.pk], key, span.start, span.end)).get(device.pk)

    async def tenant_stats(self, devices: list[Device], key: str,
                           span: TimeRange) -> tuple[Aggregate | None, dict[str, Aggregate]]:
        """Statistics over all ``devices`` together, and per device (those with data)."""
        totals = await device_totals(self._store, [d.pk for d in devices], key, span.start, span.end)
        per_device = {d.id: totals[d.pk] for d in devices if d.pk in totals}
        overall = None
        for agg in per_device.values():
            overall = agg if overall is None else overall.merge(agg)
        return overall, per_device

    async def main_key(self, device: Device) -> str | None:
        """The key a device is about: the one its type names (``temperature_sensor`` → ``temperature``),
        else its first numeric key by name."""
        keys = await self._store.numeric_keys(device.pk)
        for key in keys:
            if device.device_type == f"{key}_sensor" or device.device_type == key:
                return key
        return keys[0] if keys else None


def whole_history(now: datetime, oldest: datetime, future: timedelta) -> TimeRange:
    """The range of every accepted timestamp: from the oldest accepted year to the allowed future skew."""
    return TimeRange(oldest, now + future)

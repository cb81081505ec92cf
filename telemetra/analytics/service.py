"""Time-series queries and statistics for devices and tenants (the API's and the seed contracts' one core):
values, statistics, anomalies, the energy report and means per local hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from telemetra.analytics.aggregates import bucketed, device_pieces, device_totals, rollups_serve
from telemetra.analytics.anomalies import Anomaly, find_anomalies
from telemetra.analytics.energy import EnergyReport, energy_report
from telemetra.analytics.hourly import mean_by_local_hour
from telemetra.domain.calendar import Interval
from telemetra.domain.models import Device
from telemetra.domain.rollup import Aggregate
from telemetra.domain.thresholds import parse_thresholds
from telemetra.domain.timeparse import isoformat, utcnow
from telemetra.errors import ValidationFailed
from telemetra.registry.devices import DeviceService
from telemetra.settings import Settings
from telemetra.store import Store
from telemetra.store.base import PointValue

__all__ = ["AnalyticsService", "AGGREGATES", "TimeRange", "DeviceSummary"]

AGGREGATES = ("avg", "min", "max", "sum", "count")
MAX_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """A device key's statistics over a range and its anomalies there."""

    key: str
    stats: Aggregate | None
    anomalies: list[Anomaly]


def _value(agg: Aggregate, how: str) -> float | int:
    return {"avg": agg.mean, "min": agg.min, "max": agg.max, "sum": agg.sum, "count": agg.count}[how]


def stats_json(agg: Aggregate | None) -> dict[str, Any]:
    """count, average, min, max, stddev (population), first and last of a range; zeros and nulls when empty."""
    if agg is None:
        return {"count": 0, "average": None, "min": None, "max": None, "stddev": None, "first": None, "last": None}
    return {
        "count": agg.count,
        "average": agg.mean,
        "min": agg.min,
        "max": agg.max,
        "stddev": agg.stddev,
        "first": {"timestamp": isoformat(agg.first[0]), "value": agg.first[1]},
        "last": {"timestamp": isoformat(agg.last[0]), "value": agg.last[1]},
    }


class AnalyticsService:
    def __init__(self, store: Store, devices: DeviceService, settings: Settings) -> None:
        self._store = store
        self._devices = devices
        # Read at each call, not copied: TELEMETRA_ANOMALY_THRESHOLDS and TELEMETRA_ENERGY_MAX_HOLD_S as they stand.
        self._settings = settings

    async def latest_values(self, device: Device) -> dict[str, PointValue]:
        """The newest value of each key of the device (its full state, though it may send only what changed)."""
        return await self._store.latest_values(device.pk)

    async def recent_values(self, device: Device, key: str | None, limit: int) -> tuple[str, list[PointValue]]:
        """The key (``key``, else the device's main key) and its newest ``limit`` values, newest first."""
        chosen = await self.resolve_key(device, key)
        points = (await self._store.query_points(device.pk, [chosen], None, None, limit, True)).get(chosen, [])
        return chosen, points

    async def series(
        self, device: Device, keys: list[str], span: TimeRange, interval: Interval, how: str, tz: tzinfo
    ) -> dict[str, list[dict[str, Any]]]:
        """Per key, one value per calendar bucket with data, labelled by the bucket's start in ``tz``."""
        self.check_buckets(span, interval)
        out: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            if rollups_serve(interval, tz, span.start, span.end):
                pieces = (await device_pieces(self._store, [device.pk], key, span.start, span.end)).get(device.pk, [])
            else:
                pieces = [
                    (ts, Aggregate.from_values([(ts, v)]))
                    for ts, v in await self._store.numeric_series(device.pk, key, span.start, span.end)
                ]
            buckets = bucketed(pieces, interval, tz)
            if buckets:
                out[key] = [
                    {"timestamp": isoformat(start.astimezone(tz)), "value": _value(agg, how)}
                    for start, agg in buckets.items()
                ]
        return out

    @staticmethod
    def check_buckets(span: TimeRange, interval: Interval) -> None:
        """422 ``too_many_buckets`` past MAX_BUCKETS buckets of ``interval`` over ``span``."""
        if span.end - span.start > interval.nominal * MAX_BUCKETS:
            raise ValidationFailed(
                f"more than {MAX_BUCKETS} buckets of {interval}; choose a larger interval or a shorter range",
                code="too_many_buckets",
            )

    async def device_stats(self, device: Device, key: str, span: TimeRange) -> Aggregate | None:
        return (await device_totals(self._store, [device.pk], key, span.start, span.end)).get(device.pk)

    async def tenant_stats(
        self, devices: list[Device], key: str, span: TimeRange
    ) -> tuple[Aggregate | None, dict[str, Aggregate]]:
        """Statistics over all ``devices`` together, and per device (those with data)."""
        totals = await device_totals(self._store, [d.pk for d in devices], key, span.start, span.end)
        per_device = {d.id: totals[d.pk] for d in devices if d.pk in totals}
        overall = None
        for agg in per_device.values():
            overall = agg if overall is None else overall.merge(agg)
        return overall, per_device

    async def summary(self, device: Device, key: str | None, span: TimeRange) -> DeviceSummary:
        """The statistics of ``key`` (default: the device's main key) in ``span`` and its anomalies there: the
        alerts the device's rules raised, then the values outside the key's TELEMETRA_ANOMALY_THRESHOLDS."""
        chosen = await self.resolve_key(device, key)
        stats = await self.device_stats(device, chosen, span)
        threshold = parse_thresholds(self._settings.anomaly_thresholds).get(chosen)
        anomalies = await find_anomalies(self._store, device, chosen, span.start, span.end, stats, threshold)
        return DeviceSummary(chosen, stats, anomalies)

    async def tenant_summary(self, tenant_id: int, key: str | None, span: TimeRange) -> Aggregate | None:
        """The statistics over all the tenant's devices in ``span``: of ``key``, or of each device's own main
        key merged (a temperature sensor's temperatures with a hygrometer's humidities)."""
        devices = await self._devices.in_tenant(tenant_id)
        if key:
            overall, _ = await self.tenant_stats(devices, key, span)
            return overall
        overall = None
        for device in devices:
            chosen = await self.main_key(device)
            agg = await self.device_stats(device, chosen, span) if chosen else None
            if agg is not None:
                overall = agg if overall is None else overall.merge(agg)
        return overall

    async def energy_report(
        self, tenant_id: int, span: TimeRange, tz: tzinfo, *, key: str, device_id: str | None = None
    ) -> EnergyReport:
        """The energy (Wh) of the power ``key`` per local hour of ``tz``: of one device of the tenant, or of all."""
        if device_id:
            one = await self._devices.get_in_tenant(tenant_id, device_id)
            pks, owner = [one.pk], None
        else:
            pks, owner = [d.pk for d in await self._devices.in_tenant(tenant_id)], tenant_id
        return await energy_report(
            self._store,
            key=key,
            device_pks=pks,
            tenant_id=owner,
            start=span.start,
            end=span.end,
            tz=tz,
            now=utcnow(),
            max_hold=timedelta(seconds=self._settings.energy_max_hold_s),
        )

    async def mean_by_local_hour(
        self, tenant_id: int, key: str, span: TimeRange, tz: tzinfo, *, composable: bool, device_id: str | None = None
    ) -> dict[str, dict[str, float]]:
        """``{"YYYY-MM-DD": {"HH:00": mean}}`` of ``key`` over one device of the tenant, or all of them.
        ``composable``: ``hourly_composable(tz, span.start, span.end, HOUR)``, computed once by the caller that
        checked the range with it (it walks every hour)."""
        devices = (
            [await self._devices.get_in_tenant(tenant_id, device_id)]
            if device_id
            else await self._devices.in_tenant(tenant_id)
        )
        return await mean_by_local_hour(
            self._store, [d.pk for d in devices], key, span.start, span.end, tz, composable=composable
        )

    async def resolve_key(self, device: Device, key: str | None) -> str:
        """``key``, else the device's main key; 422 ``no_key`` when the device has sent no number yet."""
        chosen = key or await self.main_key(device)
        if chosen is None:
            raise ValidationFailed("the device has sent no numeric value yet; name a key with ?key=", code="no_key")
        return chosen

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

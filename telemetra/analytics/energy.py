"""The energy report: Wh per hour of a power key, for one device or a whole tenant, in any time zone.

Read from the energy rollups (closed steps, per UTC hour); the newest sample's open step is added here,
up to now. In a zone whose offset is not a whole number of hours a UTC hour straddles two local hours, so
those reports integrate the raw samples over local hours instead (the same integration code).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from telemetra.domain.calendar import HOUR, hour_ceil_utc, hour_floor_utc, hourly_composable, iter_buckets
from telemetra.domain.energy import BucketEnergy, energy_by_local_hour, energy_list, integrate_buckets, integrate_hours
from telemetra.store import Store

__all__ = ["EnergyReport", "energy_report", "reads_raw_samples"]

Energies = dict[datetime, tuple[float, float]]


class EnergyReport:
    """Energy per hour bucket (keyed by the bucket's UTC start) and how to present it."""

    def __init__(
        self, energies: Energies, buckets: list[tuple[datetime, datetime]], tz: tzinfo, devices_with_power: int
    ) -> None:
        self.energies = energies
        self.buckets = buckets
        self.tz = tz
        self.devices_with_power = devices_with_power

    def by_day(self, ndigits: int = 3) -> dict[str, dict[str, float]]:
        """Seed 001's shape: {"YYYY-MM-DD": {"HH:00": Wh}}, hours with no known power left out."""
        return energy_by_local_hour(self.energies, self.tz, ndigits=ndigits)

    def as_list(self, ndigits: int = 3) -> list[dict[str, Any]]:
        """One item per real hour, with its offset; coverage is the share of device-seconds with known power."""
        share = max(1, self.devices_with_power)
        scaled = {hour: (wh, covered / share) for hour, (wh, covered) in self.energies.items()}
        return energy_list(scaled, self.buckets, self.tz, ndigits=ndigits)

    @property
    def total_wh(self) -> float:
        return sum(wh for wh, _ in self.energies.values())


def reads_raw_samples(tz: tzinfo, start: datetime, end: datetime) -> bool:
    """Whether the report of [start, end) in ``tz`` integrates the raw samples (a local hour that is not made of
    whole UTC hours) rather than reading the rollups. Walks every hour of the range."""
    return not hourly_composable(tz, hour_floor_utc(start), hour_ceil_utc(end), HOUR)


async def energy_report(
    store: Store,
    *,
    key: str,
    device_pks: list[int],
    tenant_id: int | None,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    now: datetime,
    max_hold: timedelta,
) -> EnergyReport:
    """Energy of ``key`` over the whole local hours covering [start, end), summed over ``device_pks``.

    ``tenant_id`` set: ``device_pks`` are all of that tenant's devices and the tenant's own rollup is read.
    """
    lo, hi = hour_floor_utc(start), hour_ceil_utc(end)
    buckets = list(iter_buckets(lo, hi, HOUR, tz))
    latest = await store.latest_numeric(device_pks, key)
    if not reads_raw_samples(tz, lo, hi):
        if tenant_id is not None:
            energies = await store.energy_hours(key, lo, hi, tenant_id=tenant_id)
        else:
            energies = {}
            for pk in device_pks:
                _add(energies, await store.energy_hours(key, lo, hi, device_pk=pk))
        # The newest value of each device still holds (at most max_hold): its step is not in the rollups.
        for ts, watts in latest.values():
            until = min(now, ts + max_hold, hi)
            if until > ts and until > lo:
                open_step = integrate_hours([(ts, watts)], max(ts, lo), until, max_hold=max_hold)
                _add(energies, {h: (e.wh, e.covered_s) for h, e in open_step.items() if e.covered_s > 0})
    else:
        energies = {}
        local = [(a, min(b, now)) for a, b in buckets if a < now]
        for pk in device_pks:
            samples = await store.numeric_series(pk, key, lo - max_hold, hi)
            carried = await store.sample_before(pk, key, lo - max_hold)
            if samples or carried:
                hours = integrate_buckets(samples, local, carried_in=carried, max_hold=max_hold)
                _add(energies, {h: (e.wh, e.covered_s) for h, e in hours.items() if e.covered_s > 0})
    inside = {h: v for h, v in energies.items() if lo <= h < hi}
    return EnergyReport(inside, buckets, tz, len(latest))


def _add(into: Energies, more: dict[datetime, tuple[float, float] | BucketEnergy]) -> None:
    for hour, (wh, covered) in more.items():
        old_wh, old_cov = into.get(hour, (0.0, 0.0))
        into[hour] = (old_wh + wh, old_cov + covered)

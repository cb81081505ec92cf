"""Statistics over any time range, exact, read mostly from the hourly rollups.

A range [start, end) splits into whole UTC hours, read from the rollups, and at most two partial hours at
its edges, read from the raw points. The answer is the one the raw points alone would give, at the cost
of a year's statistics being 8,760 rollup rows instead of every point.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone, tzinfo

from telemetra.domain.calendar import Interval, bucket_start, hourly_composable
from telemetra.domain.rollup import Aggregate
from telemetra.store import Store

__all__ = ["range_pieces", "device_pieces", "device_totals", "bucketed", "total", "rollups_serve", "HOUR"]

HOUR = timedelta(hours=1)
Piece = tuple[datetime, Aggregate]  # (when: an hour's start or a raw point's time, statistics)


def _hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _hour_ceil(ts: datetime) -> datetime:
    floor = _hour_floor(ts)
    return floor if floor == ts else floor + HOUR


def range_pieces(
    start: datetime, end: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """Split [start, end) into (whole hours, or None) and the raw edges around them."""
    lo, hi = _hour_ceil(start), _hour_floor(end)
    if lo >= hi:
        return None, [(start, end)]
    edges = [(a, b) for a, b in ((start, lo), (hi, end)) if a < b]
    return (lo, hi), edges


async def device_pieces(
    store: Store, device_pks: list[int], key: str, start: datetime, end: datetime
) -> dict[int, list[Piece]]:
    """Per device, the statistics of ``key`` in [start, end): hourly rollups inside, raw points at the edges."""
    hours, edges = range_pieces(start, end)
    pieces: dict[int, list[Piece]] = defaultdict(list)
    if hours is not None:
        for pk, hour, agg in await store.hourly_rollups(device_pks, key, *hours):
            pieces[pk].append((hour, agg))
    for lo, hi in edges:
        for pk in device_pks:
            for ts, value in await store.numeric_series(pk, key, lo, hi):
                pieces[pk].append((ts, Aggregate.from_values([(ts, value)])))
    return pieces


async def device_totals(
    store: Store, device_pks: list[int], key: str, start: datetime, end: datetime
) -> dict[int, Aggregate]:
    """Per device, the statistics of ``key`` over [start, end): whole hours summed by the database, the
    partial hours at the edges from raw points. For long ranges and many devices (a tenant's day)."""
    hours, edges = range_pieces(start, end)
    totals = await store.rollup_totals(device_pks, key, *hours) if hours is not None else {}
    for lo, hi in edges:
        for pk in device_pks:
            for ts, value in await store.numeric_series(pk, key, lo, hi):
                single = Aggregate.from_values([(ts, value)])
                totals[pk] = totals[pk].merge(single) if pk in totals else single
    return totals


def bucketed(pieces: list[Piece], interval: Interval, tz: tzinfo) -> dict[datetime, Aggregate]:
    """Merge pieces into calendar buckets of ``interval`` in ``tz``, keyed by the bucket's start in UTC.

    UTC keys: two local times of a repeated hour (fall-back) compare equal within their zone.
    """
    buckets: dict[datetime, Aggregate] = {}
    for when, agg in pieces:
        start = bucket_start(when, interval, tz).astimezone(timezone.utc)
        buckets[start] = buckets[start].merge(agg) if start in buckets else agg
    return dict(sorted(buckets.items()))


def total(pieces: list[Piece]) -> Aggregate | None:
    out: Aggregate | None = None
    for _, agg in pieces:
        out = agg if out is None else out.merge(agg)
    return out


def rollups_serve(interval: Interval, tz: tzinfo, start: datetime, end: datetime) -> bool:
    """Whether buckets of ``interval`` in ``tz`` are unions of whole UTC hours over the range (the partial
    hours at a range's edges come from raw points anyway, see ``device_pieces``)."""
    return hourly_composable(tz, start, end, interval)

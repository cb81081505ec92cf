"""Rollups of numeric telemetry: count, sum, min, max, first, last and sum of squares per bucket.

An :class:`Aggregate` is a summary from which the statistics of a bucket can be read and which merges
with another one into the summary of the union, in any order and any grouping. The pipeline keeps one per
device, key and UTC hour (:func:`rollup_hours`); coarser buckets are merged from those
(:func:`merge_into_buckets`) where the zone allows it (``calendar.hourly_composable``), or computed from
raw points (:func:`rollup_buckets`) where it does not.

The variance is read from the sum of squares, which loses precision when the spread is tiny next to the
mean (about ``1e-16 * mean**2`` on the variance); that is plenty for sensor values, and a sum of squares
can be added up by a database, unlike the more careful running forms.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Any, TypeGuard

from telemetra.domain.calendar import Interval, bucket_start, hour_floor_utc, hours_to_buckets
from telemetra.domain.timeparse import isoformat

__all__ = [
    "Aggregate",
    "RollupPoint",
    "is_number",
    "rollup_hours",
    "rollup_days",
    "rollup_buckets",
    "merge_into_buckets",
]

UTC = timezone.utc

RollupPoint = tuple[int, str, datetime, Any]
"""``(device_pk, key, ts, value)``, as the pipeline commits them."""


def is_number(value: object) -> TypeGuard[float]:
    """Tell whether a point value can be aggregated: a finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(ts: datetime, value: Any) -> tuple[datetime, float]:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    if not is_number(value):
        raise ValueError(f"only finite numbers can be aggregated, not {value!r}")
    return ts.astimezone(UTC), float(value)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The summary of one or more ``(ts, value)`` samples; never empty.

    ``first``/``last`` are the samples with the earliest/latest time; on equal times the smaller value
    counts as first and the larger as last, so that merging does not depend on order. Times are UTC.
    """

    count: int
    sum: float
    sum_sq: float
    min: float
    max: float
    first_ts: datetime
    first_value: float
    last_ts: datetime
    last_value: float

    @classmethod
    def of(cls, ts: datetime, value: float) -> Aggregate:
        """Return the aggregate of a single sample."""
        ts, value = _checked(ts, value)
        return cls(1, value, value * value, value, value, ts, value, ts, value)

    @classmethod
    def from_values(cls, samples: Iterable[tuple[datetime, float]]) -> Aggregate:
        """Return the aggregate of ``(ts, value)`` samples, in any order; ValueError when there are none."""
        checked = [_checked(ts, value) for ts, value in samples]
        if not checked:
            raise ValueError("an aggregate needs at least one sample")
        values = [value for _, value in checked]
        first = min(checked)
        last = max(checked)
        return cls(
            len(values),
            math.fsum(values),
            math.fsum(v * v for v in values),
            min(values),
            max(values),
            first[0],
            first[1],
            last[0],
            last[1],
        )

    def add(self, ts: datetime, value: float) -> Aggregate:
        """Return this aggregate with one more sample."""
        return self.merge(Aggregate.of(ts, value))

    def merge(self, other: Aggregate) -> Aggregate:
        """Return the aggregate of both sets of samples (associative and commutative)."""
        first = min((self.first_ts, self.first_value), (other.first_ts, other.first_value))
        last = max((self.last_ts, self.last_value), (other.last_ts, other.last_value))
        return Aggregate(
            self.count + other.count,
            self.sum + other.sum,
            self.sum_sq + other.sum_sq,
            min(self.min, other.min),
            max(self.max, other.max),
            first[0],
            first[1],
            last[0],
            last[1],
        )

    @property
    def first(self) -> tuple[datetime, float]:
        return self.first_ts, self.first_value

    @property
    def last(self) -> tuple[datetime, float]:
        return self.last_ts, self.last_value

    @property
    def mean(self) -> float:
        # Rounding can put a mean of equal values a hair outside them; keep it within [min, max].
        return min(self.max, max(self.min, self.sum / self.count))

    @property
    def variance(self) -> float:
        """Population variance; exactly 0 when all values are equal, never negative."""
        if self.count == 1 or self.min == self.max:
            return 0.0
        mean = self.sum / self.count
        # sum_sq/n - mean² cancels badly when the spread is tiny: the result may come out a hair below 0.
        return max(0.0, self.sum_sq / self.count - mean * mean)

    @property
    def stddev(self) -> float:
        """Population standard deviation (like ``statistics.pstdev``)."""
        return math.sqrt(self.variance)

    def to_stats(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """Return ``{count, average, min, max, stddev, first: {timestamp, value}, last: {...}}``.

        Timestamps are ISO 8601 with the offset of ``tz`` (UTC by default).
        """
        zone = tz or UTC
        return {
            "count": self.count,
            "average": self.mean,
            "min": self.min,
            "max": self.max,
            "stddev": self.stddev,
            "first": {"timestamp": isoformat(self.first_ts.astimezone(zone)), "value": self.first_value},
            "last": {"timestamp": isoformat(self.last_ts.astimezone(zone)), "value": self.last_value},
        }


def _group(
    points: Iterable[RollupPoint], bucket_of: Callable[[datetime], Any]
) -> dict[tuple[int, str, Any], Aggregate]:
    samples: dict[tuple[int, str, Any], list[tuple[datetime, float]]] = defaultdict(list)
    for device_pk, key, ts, value in points:
        if is_number(value):  # strings, booleans and objects are not aggregated
            samples[(device_pk, key, bucket_of(ts))].append((ts, value))
    return {group: Aggregate.from_values(items) for group, items in samples.items()}


def rollup_hours(points: Iterable[RollupPoint]) -> dict[tuple[int, str, datetime], Aggregate]:
    """Group numeric points into one aggregate per ``(device_pk, key, UTC hour start)``; others are skipped."""
    return _group(points, hour_floor_utc)


def rollup_days(points: Iterable[RollupPoint], tz: tzinfo) -> dict[tuple[int, str, date], Aggregate]:
    """Group numeric points into one aggregate per ``(device_pk, key, local date in tz)``."""
    return _group(points, lambda ts: ts.astimezone(tz).date())


def rollup_buckets(
    points: Iterable[RollupPoint], interval: Interval, tz: tzinfo = UTC
) -> dict[tuple[int, str, datetime], Aggregate]:
    """Group numeric points into one aggregate per ``(device_pk, key, bucket start)`` (UTC) of ``interval`` in ``tz``.

    This is the raw-point path, for buckets that hourly rollups cannot compose.
    """
    return _group(points, lambda ts: bucket_start(ts, interval, tz).astimezone(UTC))


def merge_into_buckets(
    hourly: Mapping[datetime, Aggregate], buckets: Iterable[tuple[datetime, datetime]]
) -> dict[datetime, Aggregate]:
    """Merge one series' UTC-hour aggregates into coarser buckets, keyed by bucket start (UTC).

    Buckets without data are left out; an hour that straddles a bucket boundary raises ValueError.
    """
    owner = hours_to_buckets(hourly, buckets)
    merged: dict[datetime, Aggregate] = {}
    for hour, aggregate in sorted(hourly.items(), key=lambda item: item[0]):
        key = owner.get(hour_floor_utc(hour))
        if key is not None:
            merged[key] = merged[key].merge(aggregate) if key in merged else aggregate
    return merged

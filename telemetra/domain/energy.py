"""Energy from power samples: the integral of a step function, split exactly at bucket boundaries.

Devices send power (``instant_power``, W) only when it changes, so each sample's value holds from its
timestamp until the next sample, but for at most ``max_hold`` (default 1 h): past that the value is
unknown and the rest of the gap contributes nothing (neither energy nor coverage). A sample whose value is
not a finite number ends the previous step and starts an unknown one. Samples sharing a timestamp keep
their order: the last one wins (the others hold for zero seconds).

The pipeline keeps one rollup per device and UTC hour, ``(wh, covered_s)``, from :func:`integrate_hours`.
When a point arrives, late or not, :func:`affected_hours` tells which hours changed; the store re-reads the
samples in ``[hours_start - max_hold, hours_end)`` and overwrites those hours with :func:`integrate_hours`.
Reports are then composed from the rollups (:func:`energy_by_local_hour`, :func:`energy_list`,
:func:`sum_into_buckets`) without reading raw points.

UTC-hour rollups are local hours only in zones whose offset is a whole number of hours. Elsewhere
(Asia/Kolkata, +05:30) a UTC hour straddles two local hours and cannot be split: the caller integrates the
raw samples over the local buckets with :func:`integrate_buckets` (the same core), e.g.
``integrate_buckets(samples, list(iter_buckets(start, end, HOUR, tz)))``, and composes the result with the
same report functions.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, NamedTuple

from telemetra.domain.calendar import hour_ceil_utc, hour_floor_utc, hours_to_buckets, utc_hours

__all__ = [
    "DEFAULT_MAX_HOLD",
    "Sample",
    "BucketEnergy",
    "integrate",
    "integrate_buckets",
    "integrate_hours",
    "affected_hours",
    "affected_ranges",
    "sum_into_buckets",
    "energy_by_local_hour",
    "energy_list",
]

UTC = timezone.utc
DEFAULT_MAX_HOLD = timedelta(hours=1)
_HOUR = timedelta(hours=1)

Sample = tuple[datetime, float | None]
"""``(timestamp, watts)``; a watts value that is not a finite number means "unknown from here"."""


class BucketEnergy(NamedTuple):
    """Energy of one bucket: ``wh`` watt-hours over ``covered_s`` seconds where the power was known."""

    wh: float
    covered_s: float


_NOTHING = BucketEnergy(0.0, 0.0)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)


def _check_hold(max_hold: timedelta) -> None:
    if max_hold <= timedelta(0):
        raise ValueError("max_hold must be positive")


def _watts(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _steps(
    samples: Iterable[Sample], carried_in: Sample | None, max_hold: timedelta
) -> list[tuple[datetime, datetime, float]]:
    """Return ``(from, to, watts)`` for each known step, in time order."""
    _check_hold(max_hold)
    points = [(_utc(ts), _watts(value)) for ts, value in samples]
    if carried_in is not None:
        points.insert(0, (_utc(carried_in[0]), _watts(carried_in[1])))
    steps = []
    for i, (ts, watts) in enumerate(points):
        until = ts + max_hold
        if i + 1 < len(points):
            following = points[i + 1][0]
            if following < ts:
                raise ValueError("samples must be sorted by time (and carried_in must come before them)")
            until = min(until, following)
        if watts is not None and until > ts:
            steps.append((ts, until, watts))
    return steps


def _integrate(
    steps: list[tuple[datetime, datetime, float]], spans: Sequence[tuple[datetime, datetime, datetime]]
) -> dict[datetime, BucketEnergy]:
    """Sum each step's overlap with each span ``(key, from, to)``; spans are sorted and do not overlap."""
    totals = {key: [0.0, 0.0] for key, _, _ in spans}
    ends = [to for _, _, to in spans]
    for step_from, step_to, watts in steps:
        index = bisect_right(ends, step_from)  # the first span that ends after the step starts
        while index < len(spans) and spans[index][1] < step_to:
            key, span_from, span_to = spans[index]
            seconds = (min(step_to, span_to) - max(step_from, span_from)).total_seconds()
            if seconds > 0:
                total = totals[key]
                total[0] += watts * seconds / 3600.0
                total[1] += seconds
            index += 1
    return {key: BucketEnergy(wh, covered) for key, (wh, covered) in totals.items()}


def _spans(buckets: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime, datetime]]:
    spans: list[tuple[datetime, datetime, datetime]] = []
    for bucket_from, bucket_to in buckets:
        bucket_from, bucket_to = _utc(bucket_from), _utc(bucket_to)
        if bucket_to <= bucket_from or (spans and bucket_from < spans[-1][2]):
            raise ValueError("buckets must be non-empty, sorted and non-overlapping")
        spans.append((bucket_from, bucket_from, bucket_to))
    return spans


def integrate_buckets(
    samples: Iterable[Sample],
    buckets: Iterable[tuple[datetime, datetime]],
    *,
    carried_in: Sample | None = None,
    max_hold: timedelta = DEFAULT_MAX_HOLD,
) -> dict[datetime, BucketEnergy]:
    """Return the energy of each bucket ``[from, to)``, keyed by its start (UTC), zero buckets included.

    ``samples`` are sorted ``(ts, watts)``; they may begin before the first bucket (only what overlaps a
    bucket counts). ``carried_in`` is the last sample before them, if the caller has it apart.
    """
    return _integrate(_steps(samples, carried_in, max_hold), _spans(buckets))


def integrate_hours(
    samples: Iterable[Sample],
    start: datetime,
    end: datetime,
    *,
    carried_in: Sample | None = None,
    max_hold: timedelta = DEFAULT_MAX_HOLD,
) -> dict[datetime, BucketEnergy]:
    """Return the energy of each UTC hour that intersects ``[start, end)``, keyed by the hour's start.

    Every such hour has an entry, ``(0.0, 0.0)`` when nothing is known, so a caller can overwrite its
    stored rows blindly. Only the part of an hour inside ``[start, end)`` counts.
    """
    start, end = _utc(start), _utc(end)
    spans = [(hour, max(hour, start), min(hour + _HOUR, end)) for hour in utc_hours(start, end)]
    return _integrate(_steps(samples, carried_in, max_hold), spans)


def integrate(
    samples: Iterable[Sample],
    start: datetime,
    end: datetime,
    *,
    carried_in: Sample | None = None,
    max_hold: timedelta = DEFAULT_MAX_HOLD,
) -> BucketEnergy:
    """Return the energy over the whole of ``[start, end)``."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return _NOTHING
    return _integrate(_steps(samples, carried_in, max_hold), [(start, start, end)])[start]


def affected_hours(
    new_ts: datetime, next_ts: datetime | None = None, *, max_hold: timedelta = DEFAULT_MAX_HOLD
) -> tuple[datetime, datetime]:
    """Return the UTC hours ``[start, end)`` whose energy changes when a sample at ``new_ts`` is written.

    ``next_ts`` is the first stored sample of the same device and key strictly after ``new_ts`` (None when
    there is none or it is unknown: the answer is then the widest possible). The change is confined to
    the new sample's own step, ``[new_ts, min(next_ts, new_ts + max_hold))``: the step before it is only
    cut short inside that span, and nothing after ``next_ts`` moves. The same holds for a sample whose
    value is replaced or that is deleted. Recompute the hours with :func:`integrate_hours` over
    ``[start, end)`` from the samples in ``[start - max_hold, end)``.
    """
    _check_hold(max_hold)
    new_ts = _utc(new_ts)
    until = new_ts + max_hold
    if next_ts is not None:
        next_ts = _utc(next_ts)
        if next_ts <= new_ts:
            raise ValueError("next_ts must be after new_ts")
        until = min(until, next_ts)
    return hour_floor_utc(new_ts), hour_ceil_utc(until)


def affected_ranges(
    changes: Iterable[tuple[datetime, datetime | None]], *, max_hold: timedelta = DEFAULT_MAX_HOLD
) -> list[tuple[datetime, datetime]]:
    """Return the merged, sorted hour ranges touched by several ``(new_ts, next_ts)`` changes (a batch)."""
    ranges = sorted(affected_hours(ts, nxt, max_hold=max_hold) for ts, nxt in changes)
    merged: list[tuple[datetime, datetime]] = []
    for range_from, range_to in ranges:
        if merged and range_from <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], range_to))
        else:
            merged.append((range_from, range_to))
    return merged


def _hour_rows(energies: Mapping[datetime, BucketEnergy | tuple[float, float]]) -> list[tuple[datetime, BucketEnergy]]:
    return sorted((_utc(hour), BucketEnergy(*value)) for hour, value in energies.items())


def sum_into_buckets(
    energies: Mapping[datetime, BucketEnergy | tuple[float, float]], buckets: Iterable[tuple[datetime, datetime]]
) -> dict[datetime, BucketEnergy]:
    """Add UTC-hour rollups into coarser buckets (days, weeks, months...), keyed by bucket start (UTC).

    Every bucket has an entry. Hours outside every bucket are ignored; an hour that straddles a bucket
    boundary raises ValueError: it cannot be split, so that answer needs raw samples
    (see :func:`telemetra.domain.calendar.hourly_composable`).
    """
    spans = _spans(buckets)
    rows = _hour_rows(energies)
    owner = hours_to_buckets((hour for hour, _ in rows), [(frm, to) for _, frm, to in spans])
    totals = {key: [0.0, 0.0] for key, _, _ in spans}
    for hour, energy in rows:
        if hour in owner:
            total = totals[owner[hour]]
            total[0] += energy.wh
            total[1] += energy.covered_s
    return {key: BucketEnergy(wh, covered) for key, (wh, covered) in totals.items()}


def energy_by_local_hour(
    energies: Mapping[datetime, BucketEnergy | tuple[float, float]], tz: tzinfo, *, ndigits: int | None = None
) -> dict[str, dict[str, float]]:
    """Return ``{"YYYY-MM-DD": {"HH:00": wh, ...}}`` by local date and wall-clock hour in ``tz``.

    ``energies`` are hourly buckets keyed by their start: UTC-hour rollups in a zone with whole-hour
    offsets, or the output of :func:`integrate_buckets` over local hours elsewhere. Hours with no coverage
    are left out. On the day the clocks go back, the repeated hour's two parts are summed under one label
    (use :func:`energy_list` for the unambiguous form). Raises ValueError when a key is not at the start
    of a local hour, i.e. UTC-hour rollups in a zone such as Asia/Kolkata.
    """
    report: dict[str, dict[str, float]] = {}
    for hour, energy in _hour_rows(energies):
        if energy.covered_s <= 0:
            continue
        local = hour.astimezone(tz)
        if local.minute or local.second or local.microsecond:
            raise ValueError(
                f"{hour.isoformat()} is not the start of a local hour in {tz}: integrate the raw "
                "samples over local hours instead"
            )
        day = report.setdefault(local.date().isoformat(), {})
        label = f"{local.hour:02d}:00"
        day[label] = day.get(label, 0.0) + energy.wh
    if ndigits is not None:
        report = {day: {label: round(wh, ndigits) for label, wh in hours.items()} for day, hours in report.items()}
    return report


def energy_list(
    energies: Mapping[datetime, BucketEnergy | tuple[float, float]],
    buckets: Iterable[tuple[datetime, datetime]],
    tz: tzinfo,
    *,
    ndigits: int | None = None,
) -> list[dict[str, Any]]:
    """Return ``[{"start": ISO with offset in tz, "wh", "coverage": 0..1}]``, one item per bucket.

    ``buckets`` are the real hours to report, e.g. ``iter_buckets(start, end, HOUR, tz)``: on the day the
    clocks go back the repeated local hour gives two items with different offsets. A bucket without an
    entry in ``energies`` reports 0 Wh and coverage 0.
    """
    by_start = dict(_hour_rows(energies))
    items = []
    for bucket_from, bucket_to in buckets:
        bucket_from = _utc(bucket_from)
        energy = by_start.get(bucket_from, _NOTHING)
        length = (_utc(bucket_to) - bucket_from).total_seconds()
        coverage = min(1.0, max(0.0, energy.covered_s / length)) if length > 0 else 0.0
        wh = energy.wh if ndigits is None else round(energy.wh, ndigits)
        items.append({"start": bucket_from.astimezone(tz).isoformat(), "wh": wh, "coverage": coverage})
    return items

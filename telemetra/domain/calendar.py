"""Query intervals and calendar buckets in a time zone.

A bucket is a half-open span of real time ``[start, end)`` labelled by its start. Buckets are aligned on
the wall clock of the query's zone, the way a person reads a calendar:

- ``d``, ``w`` and ``mo`` buckets start at the first instant of a local date (local midnight, or the end of
  the gap on the rare days whose midnight is skipped), weeks on Monday, months on the 1st. A day therefore
  lasts 23 or 25 hours when the clocks change. Buckets of several days or weeks are counted from Monday
  2000-01-03 (so ``7d`` is ``1w``), of several months from January (``3mo`` are quarters).
- ``s``, ``m`` and ``h`` buckets start at the local wall-clock times that are a multiple of the interval
  counted from local midnight (so the interval must divide a day). A boundary that falls in a
  spring-forward gap does not exist and is dropped (its bucket runs on to the next one); a boundary in the
  repeated hour of a fall-back exists twice, once with each offset, and opens two distinct buckets.
  For ``1h`` in a zone whose offsets are whole hours the buckets are exactly the UTC hours.

Arithmetic is done in UTC only: subtracting two aware datetimes that share a ``ZoneInfo`` subtracts their
wall clocks, which is wrong across a change of offset.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telemetra.errors import ValidationFailed

__all__ = [
    "IntervalUnit",
    "Interval",
    "HOUR",
    "DAY",
    "parse_interval",
    "parse_timezone",
    "day_start",
    "bucket_start",
    "bucket_end",
    "iter_buckets",
    "hourly_composable",
    "hour_floor_utc",
    "hour_ceil_utc",
    "utc_hours",
    "hours_to_buckets",
]

IntervalUnit = Literal["s", "m", "h", "d", "w", "mo"]

UTC = timezone.utc
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_DAY_SECONDS = 86_400
# Multi-day and multi-week buckets are counted from a fixed Monday so that they do not depend on the query's
# start, and so that ``7d`` and ``1w`` give the same buckets.
ORIGIN = date(2000, 1, 3)
_MAX_DAYS = 366
_MAX_WEEKS = 53
# Offsets change a few times a year; a search that meets more changes than this within one bucket is lost.
_MAX_TRANSITIONS = 8
_INTERVAL_RE = re.compile(r"(\d{1,5})(mo|s|m|h|d|w)")
_ZONE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")
_ONE_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """A bucket width: ``count`` times ``unit`` (``s``, ``m``, ``h``: wall-clock; ``d``, ``w``, ``mo``: calendar)."""

    count: int
    unit: IntervalUnit

    def __post_init__(self) -> None:
        n, unit = self.count, self.unit
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError("the count must be a positive whole number")
        if unit in _UNIT_SECONDS:
            if _DAY_SECONDS % (n * _UNIT_SECONDS[unit]):
                raise ValueError(
                    "an interval in s, m or h must divide a day evenly (e.g. 1m, 5m, 15m, 30m, 1h, 6h, 12h)"
                )
        elif unit == "d":
            if n > _MAX_DAYS:
                raise ValueError(f"an interval in days may be at most {_MAX_DAYS}d")
        elif unit == "w":
            if n > _MAX_WEEKS:
                raise ValueError(f"an interval in weeks may be at most {_MAX_WEEKS}w")
        elif unit == "mo":
            if 12 % n:
                raise ValueError("an interval in months must divide a year (1mo, 2mo, 3mo, 4mo, 6mo or 12mo)")
        else:
            raise ValueError(f"unknown unit {unit!r}; use s, m, h, d, w or mo")

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def is_calendar(self) -> bool:
        """True for ``d``, ``w`` and ``mo``: buckets start on local dates and vary in length."""
        return self.unit in ("d", "w", "mo")

    @property
    def fixed_seconds(self) -> int | None:
        """The wall-clock length of an ``s``/``m``/``h`` interval in seconds; None for calendar intervals."""
        per_unit = _UNIT_SECONDS.get(self.unit)
        return None if per_unit is None else self.count * per_unit

    @property
    def nominal(self) -> timedelta:
        """A typical bucket length (a month counts 30.436875 days), to bound how many buckets a query makes."""
        if self.unit in _UNIT_SECONDS:
            return timedelta(seconds=self.count * _UNIT_SECONDS[self.unit])
        days = {"d": 1.0, "w": 7.0, "mo": 365.2425 / 12}[self.unit]
        return timedelta(days=self.count * days)


HOUR = Interval(1, "h")
DAY = Interval(1, "d")


def parse_interval(text: str) -> Interval:
    """Read ``<n><unit>`` (``1m``, ``15m``, ``1h``, ``1d``, ``1w``, ``1mo``...) or raise 422 ``invalid_interval``.

    Units are case-sensitive on purpose: ``1M`` could mean a minute or a month.
    """
    if not isinstance(text, str):
        raise ValidationFailed("'interval' must be a string such as 15m, 1h, 1d or 1mo", code="invalid_interval")
    match = _INTERVAL_RE.fullmatch(text.strip())
    if match is None:
        raise ValidationFailed(
            f"'{text[:20]}' is not an interval: write a number followed by s, m, h, d, w or mo "
            "(e.g. 15m, 1h, 1d, 1w, 1mo)",
            code="invalid_interval",
        )
    try:
        return Interval(int(match.group(1)), match.group(2))  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationFailed(f"interval '{text.strip()}': {exc}", code="invalid_interval") from exc


def parse_timezone(name: str | None) -> ZoneInfo:
    """Return the IANA zone ``name`` (None or empty: UTC), or raise 422 ``invalid_timezone``."""
    if name is None or not name.strip():
        return ZoneInfo("UTC")
    name = name.strip()
    # The pattern keeps file-system tricks out of ZoneInfo; 'localtime' would be the server's own zone.
    if len(name) > 64 or not _ZONE_RE.fullmatch(name) or name.lower() in ("localtime", "posixrules"):
        raise ValidationFailed(
            f"'{name[:64]}' is not an IANA time zone name (e.g. UTC, Europe/Paris)", code="invalid_timezone"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationFailed(
            f"unknown time zone '{name}'; use an IANA name such as Europe/Paris", code="invalid_timezone"
        ) from exc


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamps must be timezone-aware")
    return ts.astimezone(UTC)


def hour_floor_utc(ts: datetime) -> datetime:
    """Return the start of the UTC hour that contains ``ts`` (aware, UTC)."""
    return _utc(ts).replace(minute=0, second=0, microsecond=0)


def hour_ceil_utc(ts: datetime) -> datetime:
    """Return the first UTC hour boundary at or after ``ts`` (aware, UTC)."""
    floor = hour_floor_utc(ts)
    return floor if floor == _utc(ts) else floor + timedelta(hours=1)


def utc_hours(start: datetime, end: datetime) -> list[datetime]:
    """Return the starts of the UTC hours that intersect ``[start, end)``."""
    hour, stop = hour_floor_utc(start), _utc(end)
    hours = []
    while hour < stop:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def _offset_at(tz: tzinfo, epoch_s: int) -> timedelta | None:
    return (_EPOCH + timedelta(seconds=epoch_s)).astimezone(tz).utcoffset()


def _transition(tz: tzinfo, lo: datetime, hi: datetime) -> datetime:
    """Return the first instant in ``(lo, hi]`` whose offset differs from ``lo``'s (one change assumed).

    tzdata changes offsets on whole seconds, so a bisection on epoch seconds finds the instant exactly.
    """
    lo_s = (lo - _EPOCH) // timedelta(seconds=1)
    hi_s = -((_EPOCH - hi) // timedelta(seconds=1))  # ceiling
    before = _offset_at(tz, lo_s)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset_at(tz, mid) == before:
            lo_s = mid
        else:
            hi_s = mid
    return _EPOCH + timedelta(seconds=hi_s)


def day_start(day: date, tz: tzinfo) -> datetime:
    """Return the first instant of the local date ``day`` in ``tz``, in UTC.

    That is local midnight, or the end of the gap when the clocks jump over midnight.
    """
    midnight = datetime.combine(day, time(0), tz)
    instant = midnight.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return instant
    # Midnight lies in a gap: fold=1 reads it with the offset after the change (an instant before the
    # change), fold=0 with the offset before (an instant after); the day begins at the change.
    return _transition(tz, midnight.replace(fold=1).astimezone(UTC), instant)


def _floor_wall(ts_utc: datetime, seconds: int, tz: tzinfo) -> datetime:
    """Return the last boundary at or before ``ts_utc``: a wall-clock time that is a multiple of ``seconds``
    since local midnight, or the start of the local day (always a boundary, even when midnight was skipped).

    The candidate is the local time floored to the grid, read with ``ts_utc``'s own offset. If the offset
    was different at the candidate, the clocks changed in between: no boundary lies between the change
    and ``ts_utc`` (their wall times are all above the candidate's), so search again just before the change.
    """
    step = timedelta(seconds=seconds)
    probe = ts_utc
    for attempt in range(_MAX_TRANSITIONS):
        local = probe.astimezone(tz)
        offset = local.utcoffset()
        assert offset is not None  # astimezone(tz) gives an aware time, which has an offset
        wall = local.replace(tzinfo=None)
        floored = wall - (wall - datetime.combine(wall.date(), time(0))) % step
        candidate = (floored - offset).replace(tzinfo=UTC)
        if candidate.astimezone(tz).utcoffset() == offset:
            # Without a change of offset the candidate is on the same local date as ``ts_utc``, hence not
            # before its start; after one, the search may have crossed the start of the day.
            return candidate if attempt == 0 else max(candidate, day_start(ts_utc.astimezone(tz).date(), tz))
        probe = _transition(tz, candidate, probe) - _ONE_US
    raise ValueError(f"cannot align on {seconds}s buckets in {tz} near {ts_utc.isoformat()}")


def _calendar_start_date(day: date, interval: Interval) -> date:
    n = interval.count
    if interval.unit == "d":
        return ORIGIN + timedelta(days=(day - ORIGIN).days // n * n)
    if interval.unit == "w":
        return ORIGIN + timedelta(weeks=(day - ORIGIN).days // 7 // n * n)
    month = (day.year * 12 + day.month - 1) // n * n
    return date(month // 12, month % 12 + 1, 1)


def _next_calendar_date(start: date, interval: Interval) -> date:
    n = interval.count
    if interval.unit == "d":
        return start + timedelta(days=n)
    if interval.unit == "w":
        return start + timedelta(weeks=n)
    month = start.year * 12 + start.month - 1 + n
    return date(month // 12, month % 12 + 1, 1)


def _bucket_start_utc(ts_utc: datetime, interval: Interval, tz: tzinfo) -> datetime:
    seconds = interval.fixed_seconds
    if seconds is None:
        return day_start(_calendar_start_date(ts_utc.astimezone(tz).date(), interval), tz)
    return _floor_wall(ts_utc, seconds, tz)


def bucket_start(ts: datetime, interval: Interval, tz: tzinfo = UTC) -> datetime:
    """Return the start of the bucket of ``interval`` in ``tz`` that contains ``ts``, as an aware time in ``tz``.

    Use it as a label (``isoformat()`` shows the offset in force). To compare, subtract or use it as a key,
    convert it to UTC first: Python compares and subtracts two times of one ZoneInfo by their wall clocks,
    and a time in a repeated hour never equals a time of another zone (PEP 495).
    """
    return _bucket_start_utc(_utc(ts), interval, tz).astimezone(tz)


def bucket_end(start: datetime, interval: Interval, tz: tzinfo = UTC) -> datetime:
    """Return the end (= the next bucket's start) of the bucket that starts at ``start``, in UTC."""
    start = _utc(start)
    if interval.is_calendar:
        return day_start(_next_calendar_date(start.astimezone(tz).date(), interval), tz)
    step = timedelta(seconds=interval.fixed_seconds or 0)
    # Find a probe whose bucket starts after ``start`` (the bucket may be longer than the interval when a
    # boundary was dropped in a gap), then step back while an earlier boundary still follows ``start``
    # (buckets are shorter than the interval around a fall-back).
    probe = start + step
    nxt = _bucket_start_utc(probe, interval, tz)
    while nxt <= start:
        probe += step
        nxt = _bucket_start_utc(probe, interval, tz)
    while (before := _bucket_start_utc(nxt - _ONE_US, interval, tz)) > start:
        nxt = before
    return nxt


def iter_buckets(
    start: datetime, end: datetime, interval: Interval, tz: tzinfo = UTC
) -> Iterator[tuple[datetime, datetime]]:
    """Yield the buckets ``(start_utc, end_utc)`` that intersect ``[start, end)``, in order.

    The buckets are whole: the first may begin before ``start`` and the last end after ``end``; a caller
    that reports partial buckets clips them itself.
    """
    stop = _utc(end)
    current = _bucket_start_utc(_utc(start), interval, tz)
    while current < stop:
        nxt = bucket_end(current, interval, tz)
        yield current, nxt
        current = nxt


def hourly_composable(tz: tzinfo, start: datetime, end: datetime, interval: Interval = DAY) -> bool:
    """Tell whether every bucket of ``interval`` in ``tz`` over ``[start, end)`` is a union of whole UTC hours.

    When it is, the buckets can be answered by summing hourly rollups; otherwise (e.g. Asia/Kolkata,
    +05:30, or any interval shorter than an hour) the answer must come from raw points. Only bucket
    boundaries are checked: a caller that clips the first or last bucket to a ``start``/``end`` inside an
    hour must treat that partial hour from raw points too.
    """
    seconds = interval.fixed_seconds
    if seconds is not None and seconds % 3600:
        return False
    for bucket_from, bucket_to in iter_buckets(start, end, interval, tz):
        for edge in (bucket_from, bucket_to):
            if edge.minute or edge.second or edge.microsecond:
                return False
    return True


def hours_to_buckets(
    hours: Iterable[datetime], buckets: Iterable[tuple[datetime, datetime]]
) -> dict[datetime, datetime]:
    """Map each UTC hour start to the start (UTC) of the bucket ``[from, to)`` that holds the whole hour.

    This is how hourly rollups are composed into coarser buckets. Hours outside every bucket are left out;
    an hour that straddles a bucket boundary raises ValueError, since a rollup cannot be split (the caller
    should have checked :func:`hourly_composable` and used raw points).
    """
    spans = [(_utc(bucket_from), _utc(bucket_to)) for bucket_from, bucket_to in buckets]
    if any(to <= frm for frm, to in spans) or any(spans[i][1] > spans[i + 1][0] for i in range(len(spans) - 1)):
        raise ValueError("buckets must be non-empty, sorted and non-overlapping")
    starts = [frm for frm, _ in spans]
    assigned: dict[datetime, datetime] = {}
    for hour in hours:
        hour = _utc(hour)
        hour_end = hour + timedelta(hours=1)
        index = bisect_right(starts, hour) - 1  # the last bucket starting at or before the hour
        if index >= 0 and hour_end <= spans[index][1]:
            assigned[hour] = spans[index][0]
        elif (index >= 0 and hour < spans[index][1]) or (index + 1 < len(spans) and spans[index + 1][0] < hour_end):
            raise ValueError(f"the hour {hour.isoformat()} straddles a bucket boundary; use raw points")
    return assigned

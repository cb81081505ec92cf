"""Query parameters shared by the read routes: time bounds in a time zone, keys, intervals."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from telemetra.analytics.service import TimeRange
from telemetra.domain.calendar import parse_timezone
from telemetra.domain.timeparse import TimestampError, parse_query_time, utcnow
from telemetra.errors import ValidationFailed

__all__ = ["query_time", "time_range", "zone", "key_list"]


def query_time(name: str, value: str | None, tz: tzinfo | None = None) -> datetime | None:
    """An ISO date (midnight in ``tz``), ISO datetime (naive = ``tz``) or epoch; 422 ``invalid_time`` if not."""
    if value is None or not value.strip():
        return None
    try:
        return parse_query_time(value, tz) if tz is not None else parse_query_time(value)
    except TimestampError as exc:
        raise ValidationFailed(f"'{name}': {exc}", code="invalid_time") from exc


def time_range(start: str | None, end: str | None, tz: tzinfo, default_span: timedelta,
               now: datetime | None = None) -> TimeRange:
    """[start, end) with defaults: ``end`` now, ``start`` ``default_span`` before ``end``."""
    hi = query_time("end", end, tz) or (now or utcnow())
    lo = query_time("start", start, tz) or hi - default_span
    if hi <= lo:
        raise ValidationFailed("'end' must be after 'start'", code="invalid_time")
    return TimeRange(lo, hi)


def zone(name: str | None) -> tzinfo:
    """The IANA zone named by ``tz`` (UTC when absent); 422 ``invalid_timezone`` otherwise."""
    return parse_timezone(name)


def key_list(keys: str | None) -> list[str] | None:
    return [k.strip() for k in keys.split(",") if k.strip()] if keys else None

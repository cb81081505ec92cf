"""Query parameters shared by the read routes: time bounds in a time zone, keys, intervals."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Annotated

from fastapi import Path, Query

from telemetra.analytics.service import TimeRange
from telemetra.domain.calendar import parse_timezone
from telemetra.domain.timeparse import TimestampError, parse_query_time, utcnow
from telemetra.errors import ValidationFailed

__all__ = ["query_time", "time_range", "zone", "key_list", "IdPath", "IdQuery", "PageQuery", "OffsetQuery", "MAX_ID"]

# Ids are PostgreSQL `integer`s; a larger one cannot exist, and would overflow the database driver.
MAX_ID = 2**31 - 1
# Deep enough for any real listing; bounded so that page * per_page stays a small integer.
MAX_PAGE = 1_000_000
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_PAGE * 1000)]


def query_time(name: str, value: str | None, tz: tzinfo | None = None) -> datetime | None:
    """An ISO date (midnight in ``tz``), ISO datetime (naive = ``tz``) or epoch; 422 ``invalid_time`` if not."""
    if value is None or not value.strip():
        return None
    try:
        return parse_query_time(value, tz) if tz is not None else parse_query_time(value)
    except TimestampError as exc:
        raise ValidationFailed(f"'{name}': {exc}", code="invalid_time") from exc


def time_range(
    start: str | None, end: str | None, tz: tzinfo, default_span: timedelta, now: datetime | None = None
) -> TimeRange:
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

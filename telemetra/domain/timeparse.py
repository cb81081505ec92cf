"""Timestamps in and out: ISO 8601 or epoch numbers in, ISO 8601 with an explicit offset out."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone, tzinfo

__all__ = ["EPOCH_MS_THRESHOLD", "parse_timestamp", "parse_query_time", "isoformat", "utcnow", "TimestampError"]

# Epoch numbers below 1e11 are seconds (1e11 s is the year 5138), from 1e11 milliseconds (1e11 ms is 1973).
EPOCH_MS_THRESHOLD = 1e11


class TimestampError(ValueError):
    """A timestamp that cannot be read or lies outside the accepted window."""


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def _from_epoch(value: float) -> datetime:
    if isinstance(value, bool) or not math.isfinite(value):
        raise TimestampError("a timestamp must be a finite number or an ISO 8601 string")
    seconds = value / 1000.0 if abs(value) >= EPOCH_MS_THRESHOLD else float(value)
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise TimestampError("the epoch timestamp is out of range") from exc


def _ascii(text: str) -> str:
    # ISO 8601 and epoch numbers are printable ASCII. Python's parsers are laxer: fromisoformat() takes
    # "2026-01-01T00:00:00\x00Z" and float() takes other scripts' digits; neither should pass as a time.
    if not (text.isascii() and text.isprintable()):
        raise TimestampError("a timestamp is written in printable ASCII characters")
    return text


def _from_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimestampError(f"'{text[:40]}' is not an ISO 8601 timestamp") from exc
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def parse_timestamp(value: object, *, now: datetime, oldest: datetime, max_future: timedelta) -> datetime:
    """Read a message timestamp (ISO 8601, naive = UTC, or epoch s/ms) and check its window."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        ts = _from_epoch(value)
    elif isinstance(value, str):
        stripped = _ascii(value.strip())
        try:
            ts = _from_epoch(float(stripped)) if stripped.replace(".", "", 1).isdigit() else _from_iso(stripped)
        except OverflowError as exc:
            raise TimestampError("the timestamp is out of range") from exc
    else:
        raise TimestampError("a timestamp must be an ISO 8601 string or an epoch number")
    if ts < oldest:
        raise TimestampError(f"the timestamp {isoformat(ts)} is before {isoformat(oldest)}")
    if ts > now + max_future:
        raise TimestampError(f"the timestamp {isoformat(ts)} is too far in the future")
    return ts


def parse_query_time(text: str, tz: tzinfo = timezone.utc) -> datetime:
    """Read a query bound: an ISO date (midnight in ``tz``), an ISO datetime (naive = ``tz``) or epoch."""
    text = _ascii(text.strip())
    if text.replace(".", "", 1).isdigit():
        return _from_epoch(float(text))
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tz).astimezone(timezone.utc)
        except ValueError as exc:
            raise TimestampError(f"'{text}' is not an ISO date") from exc
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"'{text[:40]}' is not an ISO 8601 date or datetime") from exc
    return (parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed).astimezone(timezone.utc)


def isoformat(ts: datetime | None) -> str | None:
    """Return ``ts`` as ISO 8601 with an explicit offset (``+00:00`` for UTC), or None."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.isoformat()

"""Times in the SQLite database: integer microseconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import overload

__all__ = ["EPOCH", "HOUR_US", "us", "dt"]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HOUR_US = 3_600_000_000


# Overloaded so that a time known to be there (a NOT NULL column, a bound) converts to one that is.
@overload
def us(ts: datetime) -> int: ...
@overload
def us(ts: None) -> None: ...
def us(ts: datetime | None) -> int | None:
    # Exact integer arithmetic: timestamp() goes through a float and can be off by a microsecond.
    if ts is None:
        return None
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@overload
def dt(value: int) -> datetime: ...
@overload
def dt(value: None) -> None: ...
def dt(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)

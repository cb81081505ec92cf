"""Validate telemetry and turn its values into points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from telemetra.domain.models import Point
from telemetra.domain.timeparse import TimestampError, parse_timestamp
from telemetra.errors import ValidationFailed

__all__ = ["TelemetryLimits", "ParsedTelemetry", "parse_native_message", "points_from_values", "build_points",
           "check_keys", "parse_time"]

MAX_TYPE_LENGTH = 64
# A regular expression, not a loop over the characters: every key of every message goes through it.
CONTROL_CHARACTER = re.compile("[\x00-\x1f]")
MAX_STRING_VALUE_LENGTH = 4096
# A number other than 0 is refused outside these magnitudes: the hourly statistics keep a sum of squares,
# which must neither overflow nor underflow to 0 (PostgreSQL raises on both, and a batch it fails is never
# committed). No measurement comes near either bound.
MAX_ABS_NUMBER, MIN_ABS_NUMBER = 1e100, 1e-100


@dataclass(frozen=True, slots=True)
class TelemetryLimits:
    max_keys: int = 256
    max_key_length: int = 128
    max_future: timedelta = timedelta(days=1)
    oldest: datetime = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(slots=True)
class ParsedTelemetry:
    data: dict[str, Any]
    metadata: dict[str, Any]
    type: str
    ts: datetime | None


def _fail(message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code)


def check_keys(values: dict[str, Any], limits: TelemetryLimits, what: str) -> None:
    """Refuse too many keys, empty or over-long key names, and control characters in them."""
    if len(values) > limits.max_keys:
        raise _fail(f"'{what}' has {len(values)} keys; at most {limits.max_keys} are accepted",
                    "too_many_keys")
    for key in values:
        _check_key(key, limits, what)


def _check_key(key: str, limits: TelemetryLimits, what: str) -> None:
    problem = _key_problem(key, limits.max_key_length)
    if problem is not None:
        raise _fail(problem.format(what=what, limit=limits.max_key_length), "invalid_key")


# A fleet sends the same few key names over and over: each is checked once, then remembered.
@lru_cache(maxsize=4096)
def _key_problem(key: str, max_length: int) -> str | None:
    if not key or len(key) > max_length:
        return "key names in '{what}' must be 1-{limit} characters"
    if CONTROL_CHARACTER.search(key):
        return "key names in '{what}' must not contain control characters"
    return None


def parse_time(value: Any, now: datetime, limits: TelemetryLimits) -> datetime:
    """Read a message or property time, or raise 422 ``invalid_timestamp``."""
    try:
        return parse_timestamp(value, now=now, oldest=limits.oldest, max_future=limits.max_future)
    except TimestampError as exc:
        raise _fail(f"timestamp: {exc}", "invalid_timestamp") from exc


def _leaves(key: str, value: Any) -> Iterable[tuple[str, Any]]:
    """Yield (dotted key, scalar) pairs: ``{"gps": {"lat": 1}}`` gives ``gps.lat``, ``[230, 231]`` ``x.0``, ``x.1``."""
    if isinstance(value, dict):
        for sub, item in value.items():
            yield from _leaves(f"{key}.{sub}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(f"{key}.{index}", item)
    elif value is not None:
        yield key, value


def build_points(values: Iterable[tuple[str, Any, datetime | None]], default_ts: datetime,
                 limits: TelemetryLimits) -> list[Point]:
    """Return one point per scalar leaf; numbers become doubles; nested keys are dotted.

    Raises 422 when the leaves are too many, a key too long, or a string too long.
    """
    points: list[Point] = []
    for top_key, value, ts in values:
        if value is None:
            continue
        # Most values are scalars: no generator for them.
        leaves = _leaves(top_key, value) if isinstance(value, (dict, list)) else ((top_key, value),)
        for key, leaf in leaves:
            _check_key(key, limits, "data")
            if isinstance(leaf, str) and len(leaf) > MAX_STRING_VALUE_LENGTH:
                raise _fail(f"the value of '{key}' is longer than {MAX_STRING_VALUE_LENGTH} characters",
                            "value_too_long")
            if isinstance(leaf, int) and not isinstance(leaf, bool):
                leaf = float(leaf)
            if leaf.__class__ is float and not MIN_ABS_NUMBER <= abs(leaf) <= MAX_ABS_NUMBER and leaf:
                raise _fail(f"the value of '{key}' is out of range: a number is 0 or between {MIN_ABS_NUMBER:g} "
                            f"and {MAX_ABS_NUMBER:g} in magnitude", "number_out_of_range")
            points.append(Point(key, ts or default_ts, leaf))
            if len(points) > limits.max_keys:
                raise _fail(f"a message may carry at most {limits.max_keys} values", "too_many_keys")
    return points


def points_from_values(values: dict[str, Any], ts: datetime,
                       limits: TelemetryLimits = TelemetryLimits()) -> list[Point]:
    """Return the points of a ``{key: value}`` object at one time."""
    return build_points(((k, v, None) for k, v in values.items()), ts, limits)


def parse_native_message(doc: Any, *, now: datetime, limits: TelemetryLimits) -> ParsedTelemetry:
    """Check a ``{"data", "metadata", "type", "timestamp"}`` message.

    The timestamp is None when the message has none: the caller assigns the receive time.
    """
    if not isinstance(doc, dict):
        raise _fail("the body must be a JSON object with a 'data' object")
    data = doc.get("data")
    if not isinstance(data, dict) or not data:
        raise _fail("'data' is required and must be a non-empty JSON object of key: value",
                    "invalid_data")
    check_keys(data, limits, "data")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _fail("'metadata' must be a JSON object", "invalid_metadata")
    check_keys(metadata, limits, "metadata")
    msg_type = doc.get("type", "sensor")
    if not isinstance(msg_type, str) or not 0 < len(msg_type) <= MAX_TYPE_LENGTH:
        raise _fail(f"'type' must be a string of 1-{MAX_TYPE_LENGTH} characters", "invalid_type")
    ts = parse_time(doc["timestamp"], now, limits) if doc.get("timestamp") is not None else None
    return ParsedTelemetry(data=data, metadata=metadata, type=msg_type, ts=ts)

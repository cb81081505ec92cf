"""Validate telemetry and turn its values into points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Iterable

from telemetra.domain.models import Point
from telemetra.domain.timeparse import TimestampError, parse_timestamp
from telemetra.errors import ValidationFailed

__all__ = [
    "TelemetryLimits",
    "ParsedTelemetry",
    "parse_native_message",
    "points_from_values",
    "build_points",
    "check_keys",
    "check_text",
    "check_json_text",
    "parse_time",
    "CONTROL_CHARACTER",
]

MAX_TYPE_LENGTH = 64
# A regular expression, not a loop over the characters: every key of every message goes through it.
CONTROL_CHARACTER = re.compile("[\x00-\x1f]")
# The NUL character (U+0000): PostgreSQL's text and jsonb refuse it, and SQLite's JSON functions (through
# which batches are written) end a string there. Refused in every string a message would store, each
# string checked where it is already in hand: `'\x00' in s` per value costs next to nothing, so this is
# done here, after parsing, rather than by scanning each body for `\u0000` (which would refuse a whole
# batch for one message and miss messages that were not parsed from a body). Other control characters
# are stored as sent in values and metadata (both databases hold them, and text may hold tabs and
# newlines); names (keys, `type`, `msg_id`, device ids) refuse them all.
NUL = "\x00"
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
        raise _fail(f"'{what}' has {len(values)} keys; at most {limits.max_keys} are accepted", "too_many_keys")
    for key in values:
        _check_key(key, limits, what)


def _check_key(key: str, limits: TelemetryLimits, what: str) -> None:
    problem = _key_problem(key, limits.max_key_length)
    if problem is not None:
        raise _fail(
            problem.format(what=what, limit=limits.max_key_length) + f" (key '{key[: limits.max_key_length]}')",
            "invalid_key",
        )


# A fleet sends the same few key names over and over: each is checked once, then remembered.
@lru_cache(maxsize=4096)
def _key_problem(key: str, max_length: int) -> str | None:
    if not key or len(key) > max_length:
        return "key names in '{what}' must be 1-{limit} characters"
    if CONTROL_CHARACTER.search(key):
        return "key names in '{what}' must not contain control characters"
    return None


def check_text(value: str, where: str, code: str = "invalid_string") -> None:
    """Refuse a NUL character in a string to be stored (``where`` names the field in the answer)."""
    if NUL in value:
        raise _fail(f"'{where}' contains the NUL character (\\u0000), which cannot be stored", code)


def check_json_text(value: Any, where: str) -> None:
    """Refuse a NUL character in any key or string of a JSON value, at any depth (``where.key.0...``)."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where, "invalid_key")
            if isinstance(item, (str, dict, list)):
                check_json_text(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (str, dict, list)):
                check_json_text(item, f"{where}.{index}")


def parse_time(value: Any, now: datetime, limits: TelemetryLimits) -> datetime:
    """Read a message or property time, or raise 422 ``invalid_timestamp``."""
    try:
        return parse_timestamp(value, now=now, oldest=limits.oldest, max_future=limits.max_future)
    except TimestampError as exc:
        raise _fail(f"timestamp: {exc}", "invalid_timestamp") from exc


def _leaves(key: str, value: Any) -> Iterable[tuple[str, Any]]:
    """Yield (dotted key, scalar) pairs: ``{"gps": {"lat": 1}}`` gives ``gps.lat``, ``[230, 231]`` ``x.0``, ``x.1``.

    A null or an empty object or list holds no value, but the message keeps it as sent: its key must be
    storable too."""
    if isinstance(value, dict):
        for sub, item in value.items():
            yield from _leaves(f"{key}.{sub}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(f"{key}.{index}", item)
    elif value is not None:
        yield key, value
        return
    if not value:  # null, {} or []: no point
        check_text(key, f"data.{key}", "invalid_key")


def build_points(
    values: Iterable[tuple[str, Any, datetime | None]], default_ts: datetime, limits: TelemetryLimits
) -> list[Point]:
    """Return one point per scalar leaf; numbers become doubles; nested keys are dotted.

    Raises 422 when the leaves are too many, a key too long, a string too long or holding a NUL, or when
    two values would become the same point (``{"a": {"b": 1}, "a.b": 2}``).
    """
    points: list[Point] = []
    flattened: list[int] = []  # the indexes in ``points`` of values that came out of an object or a list
    for top_key, value, ts in values:
        if value is None:
            continue
        # Most values are scalars: no generator for them.
        nested = isinstance(value, (dict, list))
        leaves = _leaves(top_key, value) if nested else ((top_key, value),)
        for key, leaf in leaves:
            _check_key(key, limits, "data")
            if isinstance(leaf, str):
                if len(leaf) > MAX_STRING_VALUE_LENGTH:
                    raise _fail(
                        f"the value of '{key}' is longer than {MAX_STRING_VALUE_LENGTH} characters", "value_too_long"
                    )
                check_text(leaf, f"data.{key}")
            if nested:
                flattened.append(len(points))
            if isinstance(leaf, int) and not isinstance(leaf, bool):
                leaf = float(leaf)
            if leaf.__class__ is float and not MIN_ABS_NUMBER <= abs(leaf) <= MAX_ABS_NUMBER and leaf:
                raise _fail(
                    f"the value of '{key}' is out of range: a number is 0 or between {MIN_ABS_NUMBER:g} "
                    f"and {MAX_ABS_NUMBER:g} in magnitude",
                    "number_out_of_range",
                )
            points.append(Point(key, ts or default_ts, leaf))
            if len(points) > limits.max_keys:
                raise _fail(f"a message may carry at most {limits.max_keys} values", "too_many_keys")
    if flattened:
        _check_collisions(points, flattened)
    return points


def _check_collisions(points: list[Point], flattened: list[int]) -> None:
    """Refuse two values that flatten to the same point: one would silently replace the other.

    Only a flattened key can collide with another (the keys of one object are distinct), so a message of
    scalars pays nothing. A key repeated among plain values (a seed 001 property sent twice) is left to the
    later-wins rule, as before."""
    from_nesting = set(flattened)
    plain = {(p.key, p.ts) for index, p in enumerate(points) if index not in from_nesting}
    seen: set[tuple[str, datetime]] = set()
    for index in flattened:
        point = points[index]
        slot = (point.key, point.ts)
        if slot in plain or slot in seen:
            raise _fail(
                f"two values of the message give the key '{point.key}' (a nested object's key joined "
                "with '.' equals another key); rename one of them",
                "key_collision",
            )
        seen.add(slot)


def points_from_values(
    values: dict[str, Any], ts: datetime, limits: TelemetryLimits = TelemetryLimits()
) -> list[Point]:
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
        raise _fail("'data' is required and must be a non-empty JSON object of key: value", "invalid_data")
    check_keys(data, limits, "data")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _fail("'metadata' must be a JSON object", "invalid_metadata")
    check_keys(metadata, limits, "metadata")
    if metadata:
        check_json_text(metadata, "metadata")
    msg_type = doc.get("type", "sensor")
    if not isinstance(msg_type, str) or not 0 < len(msg_type) <= MAX_TYPE_LENGTH or CONTROL_CHARACTER.search(msg_type):
        raise _fail(
            f"'type' must be a string of 1-{MAX_TYPE_LENGTH} characters, without control characters", "invalid_type"
        )
    ts = parse_time(doc["timestamp"], now, limits) if doc.get("timestamp") is not None else None
    return ParsedTelemetry(data=data, metadata=metadata, type=msg_type, ts=ts)

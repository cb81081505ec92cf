"""Validate a native telemetry message (seed 002's shape) and turn its values into points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from telemetra.domain.models import Point
from telemetra.domain.timeparse import TimestampError, parse_timestamp
from telemetra.errors import ValidationFailed

__all__ = ["TelemetryLimits", "ParsedTelemetry", "parse_native_message", "points_from_values"]

MAX_TYPE_LENGTH = 64
MAX_STRING_VALUE_LENGTH = 4096


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


def _check_keys(values: dict[str, Any], limits: TelemetryLimits, what: str) -> None:
    if len(values) > limits.max_keys:
        raise _fail(f"'{what}' has {len(values)} keys; at most {limits.max_keys} are accepted",
                    "too_many_keys")
    for key in values:
        if not key or len(key) > limits.max_key_length:
            raise _fail(f"key names in '{what}' must be 1-{limits.max_key_length} characters",
                        "invalid_key")
        if any(ord(ch) < 32 for ch in key):
            raise _fail(f"key names in '{what}' must not contain control characters", "invalid_key")


def points_from_values(values: dict[str, Any], ts: datetime) -> list[Point]:
    """Return one point per non-null value; numbers become doubles, other JSON is kept as is."""
    points = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_STRING_VALUE_LENGTH:
            raise _fail(f"the value of '{key}' is longer than {MAX_STRING_VALUE_LENGTH} characters",
                        "value_too_long")
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        points.append(Point(key, ts, value))
    return points


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
    _check_keys(data, limits, "data")
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _fail("'metadata' must be a JSON object", "invalid_metadata")
    _check_keys(metadata, limits, "metadata")
    msg_type = doc.get("type", "sensor")
    if not isinstance(msg_type, str) or not 0 < len(msg_type) <= MAX_TYPE_LENGTH:
        raise _fail(f"'type' must be a string of 1-{MAX_TYPE_LENGTH} characters", "invalid_type")
    ts = None
    if doc.get("timestamp") is not None:
        try:
            ts = parse_timestamp(doc["timestamp"], now=now, oldest=limits.oldest,
                                 max_future=limits.max_future)
        except TimestampError as exc:
            raise _fail(f"'timestamp': {exc}", "invalid_timestamp") from exc
    points_from_values(data, now)  # validates the values before anything is accepted
    return ParsedTelemetry(data=data, metadata=metadata, type=msg_type, ts=ts)

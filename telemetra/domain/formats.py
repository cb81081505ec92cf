"""Message formats: every shape a device or gateway may send, normalised to one form.

Recognised shapes (by their keys, in this order):

- seed 001's device property message: ``{"bizCode", "bizData": {"devId", "properties": [{"code", "dpId",
  "time", "value"}]}, "ts"}`` — each property carries its own time;
- the native shape: ``{"data": {...}, "metadata": {...}, "type", "timestamp"}``;
- ``{"ts": ..., "values": {...}}`` (as ThingsBoard's devices send);
- a flat object, with or without a time: ``{"machine_id": 1, "timestamp": "...", "acceleration_x": 1.2}``,
  seed 004's arrays ``{"voltages": [..], "currents": [..]}``, or a plain ``{key: value}`` object.

A top-level ``msg_id`` (any shape) makes a message idempotent: a duplicate is acknowledged, not stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from telemetra.domain.telemetry import (
    CONTROL_CHARACTER,
    TelemetryLimits,
    check_json_text,
    check_keys,
    parse_native_message,
    parse_time,
)
from telemetra.errors import ValidationFailed

__all__ = ["NormalizedMessage", "normalize", "FORMAT_NAMES"]

FLAT_TIME_KEYS = ("timestamp", "ts", "time")
MAX_MSG_ID_LENGTH = 128
MAX_PROPERTIES = 1000


@dataclass(slots=True)
class NormalizedMessage:
    """One message in the common form; ``values`` hold (key, value, own time or None = message time)."""

    format: str
    data: dict[str, Any]
    ts: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    type: str = "sensor"
    device_id: str | None = None
    msg_id: str | None = None
    values: list[tuple[str, Any, datetime | None]] = field(default_factory=list)


def _fail(message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code)


def _msg_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("msg_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not 0 < len(str(value)) <= MAX_MSG_ID_LENGTH:
        raise _fail(f"'msg_id' must be a string or integer of 1-{MAX_MSG_ID_LENGTH} characters", "invalid_msg_id")
    return str(value)


def _property_message(doc: dict[str, Any], now: datetime, limits: TelemetryLimits) -> NormalizedMessage:
    biz = doc.get("bizData")
    if not isinstance(doc.get("bizCode"), str):
        raise _fail("'bizCode' must be a string", "invalid_data")
    if not isinstance(biz, dict) or not isinstance(biz.get("devId"), str):
        raise _fail("'bizData' must be an object with a 'devId' string", "invalid_data")
    properties = biz.get("properties")
    if not isinstance(properties, list) or not properties or len(properties) > MAX_PROPERTIES:
        raise _fail(f"'bizData.properties' must be a list of 1-{MAX_PROPERTIES} properties", "invalid_data")
    ts = parse_time(doc["ts"], now, limits) if doc.get("ts") is not None else None
    values, data = [], {}
    for prop in properties:
        if not isinstance(prop, dict) or not isinstance(prop.get("code"), str) or "value" not in prop:
            raise _fail("each property needs a 'code' string and a 'value'", "invalid_data")
        own = parse_time(prop["time"], now, limits) if prop.get("time") is not None else None
        values.append((prop["code"], prop["value"], own))
        data[prop["code"]] = prop["value"]
    check_keys(data, limits, "properties")
    metadata = {k: biz[k] for k in ("productId", "dataId") if k in biz}
    metadata["bizCode"] = doc["bizCode"]
    check_json_text(metadata, "metadata")
    return NormalizedMessage(
        format="property",
        data=data,
        ts=ts,
        metadata=metadata,
        type="property",
        device_id=biz["devId"],
        msg_id=_msg_id(doc) or _as_str(biz.get("dataId")),
        values=values,
    )


def _as_str(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)[:MAX_MSG_ID_LENGTH]


def _native(doc: dict[str, Any], now: datetime, limits: TelemetryLimits) -> NormalizedMessage:
    parsed = parse_native_message(doc, now=now, limits=limits)
    return NormalizedMessage(
        format="native",
        data=parsed.data,
        ts=parsed.ts,
        metadata=parsed.metadata,
        type=parsed.type,
        msg_id=_msg_id(doc),
        device_id=_device_field(doc),
        values=[(k, v, None) for k, v in parsed.data.items()],
    )


def _ts_values(doc: dict[str, Any], now: datetime, limits: TelemetryLimits) -> NormalizedMessage:
    values = doc["values"]
    if not values:
        raise _fail("'values' must be a non-empty object", "invalid_data")
    check_keys(values, limits, "values")
    ts = parse_time(doc["ts"], now, limits) if doc.get("ts") is not None else None
    return NormalizedMessage(
        format="ts_values",
        data=values,
        ts=ts,
        msg_id=_msg_id(doc),
        device_id=_device_field(doc),
        values=[(k, v, None) for k, v in values.items()],
    )


def _flat(doc: dict[str, Any], now: datetime, limits: TelemetryLimits) -> NormalizedMessage:
    time_key = next((k for k in FLAT_TIME_KEYS if k in doc), None)
    ts = parse_time(doc[time_key], now, limits) if time_key and doc[time_key] is not None else None
    data = {k: v for k, v in doc.items() if k not in (time_key, "msg_id", "device_id")}
    if not data:
        raise _fail("the message holds no values", "invalid_data")
    check_keys(data, limits, "message")
    return NormalizedMessage(
        format="flat",
        data=data,
        ts=ts,
        msg_id=_msg_id(doc),
        device_id=_device_field(doc),
        values=[(k, v, None) for k, v in data.items()],
    )


def _device_field(doc: dict[str, Any]) -> str | None:
    value = doc.get("device_id")
    if value is not None and not isinstance(value, str):
        raise _fail("'device_id' must be a string", "invalid_device_id")
    return value


_SHAPES: list[tuple[Callable[[dict[str, Any]], bool], Callable[..., NormalizedMessage]]] = [
    (lambda d: "bizCode" in d or "bizData" in d, _property_message),
    (lambda d: "data" in d, _native),
    (lambda d: isinstance(d.get("values"), dict), _ts_values),
    (lambda d: True, _flat),
]

FORMAT_NAMES = ("property", "native", "ts_values", "flat")


def normalize(doc: Any, *, now: datetime, limits: TelemetryLimits) -> NormalizedMessage:
    """Recognise the shape of ``doc`` and return it normalised; ValidationFailed when it fits none."""
    if not isinstance(doc, dict) or not doc:
        raise _fail("a message must be a non-empty JSON object")
    for matches, parse in _SHAPES:
        if matches(doc):
            message = parse(doc, now, limits)
            # An id for deduplication, compared as stored: no control character (a NUL cannot be stored,
            # and the others in an id are a sender's bug that would only confuse its logs).
            if message.msg_id is not None and CONTROL_CHARACTER.search(message.msg_id):
                raise _fail("'msg_id' must not contain control characters", "invalid_msg_id")
            return message
    raise _fail("unrecognised message shape")  # unreachable: the flat shape takes any object

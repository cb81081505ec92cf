"""Value encoding shared by both backends: a point's value goes to one of four typed columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from telemetra.domain.models import Point, TelemetryMessage

__all__ = [
    "encode_value",
    "decode_value",
    "dedupe_points",
    "latest_per_key",
    "dumps",
    "split_batch_duplicates",
    "resolve_batch_duplicates",
]


def dumps(value: Any) -> str:
    """Serialise JSON compactly."""
    return orjson.dumps(value).decode()


def encode_value(value: Any) -> tuple[float | None, str | None, bool | None, str | None]:
    """Return (v_num, v_str, v_bool, v_json) for a point value."""
    if isinstance(value, bool):
        return None, None, value, None
    if isinstance(value, (int, float)):
        return float(value), None, None, None
    if isinstance(value, str):
        return None, value, None, None
    return None, None, None, dumps(value)


def decode_value(v_num: float | None, v_str: str | None, v_bool: Any, v_json: Any) -> Any:
    """Return the value held by whichever typed column is set."""
    if v_num is not None:
        return v_num
    if v_str is not None:
        return v_str
    if v_bool is not None:
        return bool(v_bool)
    if isinstance(v_json, str):
        return orjson.loads(v_json)
    return v_json


def dedupe_points(messages: list[TelemetryMessage]) -> dict[tuple[int, str, datetime], Point]:
    """Return the points of a batch keyed by (device, key, ts), the later message winning."""
    out: dict[tuple[int, str, datetime], Point] = {}
    for msg in messages:
        for point in msg.points:
            out[(msg.device_pk, point.key, point.ts)] = point
    return out


def latest_per_key(points: dict[tuple[int, str, datetime], Point]) -> dict[tuple[int, str], Point]:
    """Return the newest point per (device, key) of a batch."""
    out: dict[tuple[int, str], Point] = {}
    for (device_pk, key, ts), point in points.items():
        current = out.get((device_pk, key))
        if current is None or ts >= current.ts:
            out[(device_pk, key)] = point
    return out


def split_batch_duplicates(
    messages: list[TelemetryMessage],
) -> tuple[list[TelemetryMessage], list[tuple[TelemetryMessage, TelemetryMessage]]]:
    """Return the messages whose (device, msg_id) is first in the batch, and (repeat, first) pairs."""
    first_of: dict[tuple[int, str], TelemetryMessage] = {}
    unique, repeats = [], []
    for msg in messages:
        if msg.msg_id is None:
            unique.append(msg)
            continue
        key = (msg.device_pk, msg.msg_id)
        if key in first_of:
            repeats.append((msg, first_of[key]))
        else:
            first_of[key] = msg
            unique.append(msg)
    return unique, repeats


def resolve_batch_duplicates(repeats: list[tuple[TelemetryMessage, TelemetryMessage]]) -> None:
    """After the commit, give each in-batch repeat the id of the message it repeated."""
    for repeat, first in repeats:
        repeat.id, repeat.duplicate = first.id, True

"""The upstream of `telemetra pull`: an IoT objects API of the public RenderIoTAPI's shapes (seed 000).

    GET /iot_objects                   [{"id", "client", "type"}, ...]        (every client's objects)
    GET /iot_objects/by_client/{c}     the same, one client's (404 when it has none)
    GET /iot_objects/{id}              {"id", "client", "type", "metrics": {name: value | null}, "timestamp"}
    GET /iot_data/{id}                 {"measurements": [{"timestamp", "value", "key"?}]}   (seed 000's text)

``/iot_objects/{id}/history`` is not read: the original makes it up at every call (ten values "of the last ten
minutes", new ones each time), so storing it would store invented points. An object whose detail has no
``metrics`` (or answers 404) is read through ``/iot_data/{id}`` when the upstream has it (Telemetra's own objects
API is such an upstream). Every answer is bounded in size and checked in shape; whatever fails is an
``UpstreamError`` of one kind: ``down``, ``slow``, ``http_error`` or ``garbage``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import quote

import httpx
import orjson

from telemetra.domain.formats import MAX_MSG_ID_LENGTH
from telemetra.domain.ids import DEVICE_ID_PATTERN

__all__ = ["Upstream", "UpstreamError", "UpstreamObject", "FAILURE_KINDS"]

FAILURE_KINDS = ("down", "slow", "http_error", "garbage")
MAX_ANSWER_BYTES = 8 * 1024 * 1024
MAX_CLIENT_NAME_LENGTH = 100
MAX_TIMESTAMP_LENGTH = 64
# /iot_data answers may hold a long history; the newest this many measurements per poll are enough.
MAX_MEASUREMENTS = 1000


class UpstreamError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class UpstreamObject:
    id: str
    client: str
    type: str


def message_id(object_id: str, timestamp: str, key: str | None = None) -> str:
    """The msg_id of a reading: the object and the upstream's time (and key), so a reading polled twice, by
    this process or after a restart, is stored once."""
    text = f"{object_id}@{timestamp}" + (f"/{key}" if key else "")
    return text if len(text) <= MAX_MSG_ID_LENGTH else hashlib.sha256(text.encode()).hexdigest()


def _printable(text: object, max_length: int) -> TypeGuard[str]:
    return isinstance(text, str) and 0 < len(text) <= max_length and all(ord(c) >= 32 for c in text)


def _scalar(value: object) -> bool:
    return isinstance(value, (bool, int, float, str)) and not (isinstance(value, str) and len(value) > 1024)


class Upstream:
    """An HTTP client of the upstream: at most ``concurrency`` requests at once, each within ``timeout_s``."""

    def __init__(self, url: str, *, timeout_s: float, concurrency: int) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"Accept": "application/json", "User-Agent": "telemetra-pull"},
        )
        self._slots = asyncio.Semaphore(concurrency)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_json(self, path: str) -> Any:
        """The parsed answer of GET ``path``; None for 404. UpstreamError for anything else that is not JSON."""
        async with self._slots:
            try:
                async with self._http.stream("GET", path) as response:
                    if response.status_code == 404:
                        return None
                    if response.status_code >= 400:
                        raise UpstreamError("http_error", f"GET {path} answered {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES:
                            raise UpstreamError("garbage", f"GET {path}: answer larger than {MAX_ANSWER_BYTES} bytes")
            except httpx.TimeoutException as exc:
                raise UpstreamError("slow", f"GET {path}: no answer within the timeout") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError("down", f"GET {path}: {type(exc).__name__}") from exc
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("garbage", f"GET {path}: not JSON") from exc

    async def objects(self, clients: list[str]) -> list[UpstreamObject]:
        """The objects of ``clients`` (every client's when empty); objects with an unusable id or client are
        left out (a garbage answer as a whole raises)."""
        if not clients:
            return _objects(await self.get_json("/iot_objects"), "/iot_objects")
        found: list[UpstreamObject] = []
        for client in clients:
            path = f"/iot_objects/by_client/{quote(client, safe='')}"
            found += [o for o in _objects(await self.get_json(path) or [], path) if o.client == client]
        return found

    async def readings(self, obj: UpstreamObject) -> list[dict[str, Any]]:
        """The object's current readings as telemetry messages, each with its msg_id."""
        detail = await self.get_json(f"/iot_objects/{quote(obj.id, safe='')}")
        if isinstance(detail, dict) and isinstance(detail.get("metrics"), dict):
            stamp = detail.get("timestamp")
            if not _printable(stamp, MAX_TIMESTAMP_LENGTH):
                raise UpstreamError("garbage", f"object {obj.id}: no usable timestamp")
            values = {k: v for k, v in detail["metrics"].items() if _scalar(v)}
            if not values:
                return []
            return [{"data": values, "timestamp": stamp, "msg_id": message_id(obj.id, stamp)}]
        if detail is not None and not isinstance(detail, dict):
            raise UpstreamError("garbage", f"object {obj.id}: not an object")
        data = await self.get_json(f"/iot_data/{quote(obj.id, safe='')}")
        if data is None:
            return []
        measurements = data.get("measurements") if isinstance(data, dict) else None
        if not isinstance(measurements, list):
            raise UpstreamError("garbage", f"iot_data of {obj.id}: no measurements")
        docs = []
        for entry in measurements[:MAX_MEASUREMENTS]:
            if not isinstance(entry, dict) or not _scalar(entry.get("value")):
                continue
            stamp, key = entry.get("timestamp"), entry.get("key")
            key = key if _printable(key, 128) else "value"
            if _printable(stamp, MAX_TIMESTAMP_LENGTH):
                docs.append(
                    {"data": {key: entry["value"]}, "timestamp": stamp, "msg_id": message_id(obj.id, stamp, key)}
                )
        return docs


def _objects(answer: Any, path: str) -> list[UpstreamObject]:
    if not isinstance(answer, list):
        raise UpstreamError("garbage", f"GET {path}: not a list of objects")
    found = []
    for item in answer:
        if not isinstance(item, dict):
            continue
        object_id, client, kind = item.get("id"), item.get("client"), item.get("type")
        if (
            isinstance(object_id, str)
            and DEVICE_ID_PATTERN.fullmatch(object_id)
            and _printable(client, MAX_CLIENT_NAME_LENGTH)
        ):
            found.append(UpstreamObject(object_id, client, kind if _printable(kind, 64) else "sensor"))
    return found

"""Live streams of committed points: Server-Sent Events per device, a WebSocket for several devices, and the
console's one SSE stream of many devices' telemetry, command states and alerts.

All read a subscription of the live feed (``live/hub.py``); a client that falls too far behind is sent
a last `dropped` event and disconnected, so it never slows ingestion or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, AsyncIterator
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from telemetra.api.deps import SESSION_COOKIE, ReadDep, Services, ServicesDep
from telemetra.api.errors import REASONS, error_responses
from telemetra.errors import Forbidden, TelemetraError, ValidationFailed
from telemetra.live.hub import EVERY_KIND, LiveEvent, Subscription, event_kind
from telemetra.registry.auth import TenantCaller
from telemetra.registry.roles import require_permission

logger = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
MAX_STREAM_DEVICES = 100
# A console page shows at most a page of devices; past this it should ask for fewer.
MAX_CONSOLE_STREAM_DEVICES = 200
MAX_EVENTS_PER_WRITE = 256
# WebSocket close codes: 4000 + the HTTP status of the refusal; 1013 "try again later" for a dropped client.
WS_DROPPED = 1013
WS_GOING_AWAY = 1001


def client_event(event: LiveEvent) -> dict[str, Any]:
    """What a stream client sees of an event (not the tenant id)."""
    return {
        "device_id": event["device_id"],
        "timestamp": event["timestamp"],
        "values": event["values"],
        "message_id": event["message_id"],
    }


def console_event(event: LiveEvent) -> bytes:
    """One SSE event of the console's stream: its kind as the event name, the client's fields as data."""
    kind = event_kind(event)
    if kind == "telemetry":
        data: dict[str, Any] = {
            "device_id": event["device_id"],
            "ts": event["timestamp"],
            "values": event["values"],
            "message_id": event["message_id"],
        }
    else:
        data = {name: value for name, value in event.items() if name not in ("kind", "tenant_id")}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _device_event(event: LiveEvent) -> bytes:
    return b"data: " + orjson.dumps(client_event(event)) + b"\n\n"


async def _sse(subscription: Subscription, render=_device_event) -> AsyncIterator[bytes]:
    try:
        yield b": subscribed\n\n"  # the subscription is live from here on
        while True:
            try:
                first = await subscription.next(KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
                continue
            # What else is waiting goes out in the same write: under load a write per event costs more
            # than the events themselves.
            events = [first, *subscription.ready(MAX_EVENTS_PER_WRITE)]
            chunk = b"".join(render(e) for e in events if e is not None)
            if chunk:
                yield chunk
            if None in events:
                if subscription.dropped:
                    yield b'event: dropped\ndata: {"reason": "too slow"}\n\n'
                return  # dropped, or the server is shutting down
    finally:
        subscription.close()


def _event_stream(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.get(
    "/api/v1/devices/{device_id}/stream",
    responses=error_responses(401, 403, 404),
    response_class=StreamingResponse,
    summary="Live points of a device (Server-Sent Events)",
)
async def device_stream(device_id: str, services: ServicesDep, principal: ReadDep) -> StreamingResponse:
    """`text/event-stream`: one `data: {"device_id", "timestamp", "values", "message_id"}` event per committed
    message, from the moment of subscription (first line `: subscribed`)."""
    device = await services.devices.get_in_tenant(principal.tenant_id, device_id)
    subscription = services.live.hub.subscribe(principal.tenant_id, {device.id})
    return _event_stream(_sse(subscription))


@router.get(
    "/api/v1/stream/console",
    responses=error_responses(401, 403, 404, 422),
    response_class=StreamingResponse,
    summary="Live telemetry, command states and alerts of several devices (Server-Sent Events)",
)
async def console_stream(
    services: ServicesDep,
    principal: ReadDep,  # role: viewer
    devices: Annotated[
        str, Query(max_length=MAX_CONSOLE_STREAM_DEVICES * 130, description="Comma-separated device ids.")
    ] = "",
) -> StreamingResponse:
    """One connection for a page's devices (`?devices=a,b,c`, 1 to 200), from the moment of subscription
    (first line `: subscribed`): `event: telemetry` `{"device_id", "ts", "values", "message_id"}`, `event:
    command` `{"device_id", "command_id", "name", "status"}`, `event: alert` `{"alert_id", "rule_id",
    "device_id", "severity", "state"}`; `event: dropped` last when the client fell too far behind. Another
    tenant's device, or one that does not exist, answers 404."""
    wanted = list(dict.fromkeys(d for d in (part.strip() for part in devices.split(",")) if d))
    if not wanted or len(wanted) > MAX_CONSOLE_STREAM_DEVICES:
        raise ValidationFailed(f"name 1 to {MAX_CONSOLE_STREAM_DEVICES} devices: ?devices=a,b", code="invalid_devices")
    found = await services.devices.all_in_tenant(principal.tenant_id, wanted)
    subscription = services.live.hub.subscribe(principal.tenant_id, {d.id for d in found}, EVERY_KIND)
    return _event_stream(_sse(subscription, console_event))


@router.websocket("/api/v1/stream")
async def stream_socket(websocket: WebSocket, devices: str = Query("")) -> None:
    """Live points of several devices: `?devices=a,b` with the tenant key in `X-API-Key` (or the session
    cookie of a person signed in, from a page of this site). Each message is
    a JSON event; a refusal is a JSON error, then a close with code 4000 + its HTTP status."""
    await websocket.accept()
    services = websocket.app.state.services
    try:
        principal = await _socket_caller(websocket, services)
        wanted = [d for d in (part.strip() for part in devices.split(",")) if d]
        if not wanted or len(wanted) > MAX_STREAM_DEVICES:
            raise ValidationFailed(f"name 1 to {MAX_STREAM_DEVICES} devices: ?devices=a,b", code="invalid_devices")
        for device_id in wanted:
            await services.devices.get_in_tenant(principal.tenant_id, device_id)
    except TelemetraError as exc:
        await websocket.send_text(
            orjson.dumps({"error": REASONS.get(exc.status, "Error"), "code": exc.code, "message": exc.message}).decode()
        )
        await websocket.close(code=4000 + exc.status)
        return
    subscription = services.live.hub.subscribe(principal.tenant_id, set(wanted))
    # The client says nothing; reading tells us when it leaves.
    reader = asyncio.get_running_loop().create_task(_until_closed(websocket))
    try:
        await websocket.send_text(orjson.dumps({"subscribed": sorted(set(wanted))}).decode())
        while not reader.done():
            next_event = asyncio.ensure_future(subscription.next())
            done, _ = await asyncio.wait({next_event, reader}, return_when=asyncio.FIRST_COMPLETED)
            if next_event not in done:
                next_event.cancel()
                break
            event = next_event.result()
            if event is None:
                if subscription.dropped:
                    await websocket.send_text('{"event": "dropped", "reason": "too slow"}')
                    await websocket.close(code=WS_DROPPED)
                else:
                    await websocket.close(code=WS_GOING_AWAY)  # the server is shutting down
                break
            await websocket.send_text(orjson.dumps(client_event(event)).decode())
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client left while we were sending
    finally:
        subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _socket_caller(websocket: WebSocket, services: Services) -> TenantCaller:
    """The tenant key in X-API-Key, else the session cookie of a page of this same site: a browser sends the
    cookie with a WebSocket opened from any site (no CORS, no CSRF header on a handshake), so a foreign
    Origin is refused."""
    key = websocket.headers.get("x-api-key")
    if key:
        return require_permission(await services.auth.authenticate(key), "read")
    session_id = websocket.cookies.get(SESSION_COOKIE)
    if not session_id:
        return require_permission(await services.auth.authenticate(None), "read")  # 401 missing_api_key
    origin = websocket.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        raise Forbidden("A session's stream is opened from the console's own site.", code="foreign_origin")
    return require_permission(await services.sessions.authenticate(session_id), "read")


async def _until_closed(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()

"""Live streams of committed points: Server-Sent Events per device, and a WebSocket for several devices.

Both read a subscription of the live feed (``live/hub.py``); a client that falls too far behind is sent
a last `dropped` event and disconnected, so it never slows ingestion or the other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from telemetra.api.deps import SESSION_COOKIE, ReadDep, Services, ServicesDep
from telemetra.api.errors import REASONS, error_responses
from telemetra.errors import Forbidden, TelemetraError, ValidationFailed
from telemetra.live.hub import LiveEvent, Subscription
from telemetra.registry.auth import TenantCaller
from telemetra.registry.roles import require_permission

logger = logging.getLogger(__name__)
router = APIRouter(tags=["live"])

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
MAX_STREAM_DEVICES = 100
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


async def _sse(subscription: Subscription) -> AsyncIterator[bytes]:
    try:
        yield b": subscribed\n\n"  # the subscription is live from here on
        while True:
            try:
                event = await subscription.next(KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                if subscription.dropped:
                    yield b'event: dropped\ndata: {"reason": "too slow"}\n\n'
                return  # dropped, or the server is shutting down
            yield b"data: " + orjson.dumps(client_event(event)) + b"\n\n"
    finally:
        subscription.close()


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
    return StreamingResponse(
        _sse(subscription),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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

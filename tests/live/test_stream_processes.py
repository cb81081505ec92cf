"""SSE and WebSocket streams across two `telemetra serve` processes joined by a real Redis: a client of
one process sees the points the other committed."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from tests.brokers import require_port
from tests.conftest import TEST_ADMIN_KEY


@pytest.fixture
def two_servers(server_factory):
    require_port(6379, "Redis")
    env = {
        "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
        "TELEMETRA_REDIS_URL": "redis://127.0.0.1:6379/0",
        "TELEMETRA_REDIS_CHANNEL": f"telemetra-test:{uuid.uuid4().hex}",
    }  # other runs share this Redis
    return server_factory(env=env), server_factory(env=env)


async def _tenant_with_device(url: str) -> tuple[dict, dict]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        resp = await http.post(
            "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": f"t-{uuid.uuid4().hex[:8]}"}
        )
        tenant = {"X-API-Key": resp.json()["api_key"]}
        resp = await http.post("/api/v1/devices/register", headers=tenant, json={"name": "meter"})
        device = resp.json()["device"]
        return tenant, device


async def _sse_events(lines, count: int) -> list[dict]:
    events = []
    while len(events) < count:
        line = await asyncio.wait_for(lines.__anext__(), 10)
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


async def test_sse_and_websocket_clients_see_points_committed_by_another_process(two_servers) -> None:
    ingesting, streaming = two_servers
    tenant, device = await _tenant_with_device(ingesting.url)
    _, other = await _tenant_with_device(ingesting.url)  # another tenant's device: never in our streams
    device_key = {"X-API-Key": device["api_key"]}
    ws_url = streaming.url.replace("http", "ws") + f"/api/v1/stream?devices={device['id']}"
    async with (
        httpx.AsyncClient(base_url=streaming.url, timeout=10) as http,
        http.stream("GET", f"/api/v1/devices/{device['id']}/stream", headers=tenant) as sse,
        websockets.connect(ws_url, additional_headers=tenant) as ws,
    ):
        assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"subscribed": [device["id"]]}
        lines = sse.aiter_lines()
        assert await asyncio.wait_for(lines.__anext__(), 10) == ": subscribed"
        async with httpx.AsyncClient(base_url=ingesting.url, timeout=10) as sender:
            await sender.post(
                "/api/v1/devices/telemetry", headers={"X-API-Key": other["api_key"]}, json={"data": {"secret": 1}}
            )
            for n in range(3):
                resp = await sender.post(
                    "/api/v1/devices/telemetry", headers=device_key, json={"voltages": [230.0 + n, 231.0], "n": n}
                )
                assert resp.status_code == 201
        got = await _sse_events(lines, 3)
        assert [e["values"] for e in got] == [{"voltages": [230.0 + n, 231.0], "n": n} for n in range(3)]
        assert {e["device_id"] for e in got} == {device["id"]}
        socket_events = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(3)]
        assert [e["values"]["n"] for e in socket_events] == [0, 1, 2]
        assert socket_events == got

        # SIGTERM ends open streams at once (uvicorn would otherwise wait for them), then the server stops.
        await asyncio.to_thread(streaming.stop)
        assert [line async for line in lines if line.strip()] == []  # the stream simply ends
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        # Going away (our own close) or service restart (uvicorn's, when its shutdown gets there first).
        assert closed.value.rcvd.code in (1001, 1012)
        assert "Traceback" not in streaming.stderr


async def test_streams_refuse_foreign_devices_and_bad_keys(two_servers) -> None:
    server, _ = two_servers
    tenant, device = await _tenant_with_device(server.url)
    intruder, _ = await _tenant_with_device(server.url)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        resp = await http.get(f"/api/v1/devices/{device['id']}/stream", headers=intruder)
        assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"
        assert (await http.get(f"/api/v1/devices/{device['id']}/stream")).status_code == 401
    base = server.url.replace("http", "ws") + "/api/v1/stream"
    for query, headers, code in (
        (f"?devices={device['id']}", intruder, 4404),
        (f"?devices={device['id']}", {}, 4401),
        ("?devices=", tenant, 4422),
        (f"?devices={device['id']}", {"X-API-Key": device["api_key"]}, 4403),
    ):
        async with websockets.connect(base + query, additional_headers=headers) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert set(error) == {"error", "code", "message"}
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd.code == code, query

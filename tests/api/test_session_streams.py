"""Over the wire, with real `telemetra serve` processes: the demo user of `--demo`, the SSE and WebSocket
streams taking the session cookie, and a user disabled through one process refused at once by another."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.people import PASSWORD


async def _signed_in(url: str, email: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=10)
    resp = await client.post("/api/v1/session", json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    return client


async def test_demo_user_streams_by_cookie_and_a_disable_seen_by_another_process(server_factory) -> None:
    server = server_factory("--demo")
    password = server.demo()["password"]
    demo = await _signed_in(server.url, "demo@localhost", password)
    try:
        info = (await demo.get("/api/v1/session")).json()
        assert info["user"]["role"] == "admin" and info["user"]["tenant_name"] == "demo"
        reg = await demo.post("/api/v1/devices/register", json={"name": "meter"})
        assert reg.status_code == 201, reg.text
        device = reg.json()["device"]
        cookie = f"telemetra_session={demo.cookies['telemetra_session']}"
        host = server.url.removeprefix("http://")
        ws_url = f"ws://{host}/api/v1/stream?devices={device['id']}"
        async with (
            demo.stream("GET", f"/api/v1/devices/{device['id']}/stream") as sse,
            websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": server.url}) as ws,
        ):
            assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"subscribed": [device["id"]]}
            lines = sse.aiter_lines()
            assert await asyncio.wait_for(lines.__anext__(), 10) == ": subscribed"
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as sender:
                sent = await sender.post(
                    "/api/v1/devices/telemetry", headers={"X-API-Key": device["api_key"]}, json={"data": {"w": 5}}
                )
                assert sent.status_code == 201
            line = ""
            while not line.startswith("data: "):
                line = await asyncio.wait_for(lines.__anext__(), 10)
            assert json.loads(line[6:])["values"] == {"w": 5.0}
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["values"] == {"w": 5.0}
        # A page of another site cannot open the stream with the cookie; no cookie, no stream.
        for headers, code in (({"Cookie": cookie, "Origin": "http://evil.example"}, 4403), ({}, 4401)):
            async with websockets.connect(ws_url, additional_headers=headers) as ws:
                refusal = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert refusal["code"] in ("foreign_origin", "missing_api_key")
                await asyncio.wait_for(ws.wait_closed(), 10)
                assert ws.close_code == code

        made = await demo.post(
            "/api/v1/users", json={"email": "op@example.com", "role": "operator", "password": PASSWORD}
        )
        assert made.status_code == 201
        operator = await _signed_in(server.url, "op@example.com", PASSWORD)
        other = server_factory()  # another process on the same database
        boss = await _signed_in(other.url, "demo@localhost", password)
        try:
            assert (await operator.get("/api/v1/devices")).status_code == 200
            user_id = made.json()["user"]["id"]
            assert (await boss.patch(f"/api/v1/users/{user_id}", json={"disabled": True})).status_code == 200
            resp = await operator.get("/api/v1/devices")  # at once: no cache to wait for
            assert resp.status_code == 401
        finally:
            await boss.aclose()
            await operator.aclose()
    finally:
        await demo.aclose()
    server.stop()
    # Not a terminal: the output says where the sign-in is kept, and the password is in no output at all.
    assert "Demo sign-in: in " in server.stdout
    assert password not in server.stdout and password not in server.stderr

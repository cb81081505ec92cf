"""Seed 004's monitoring API on both backends: watches of the live feed, their contract, the inactivity
timeout, and keys in the query string."""

from __future__ import annotations

import asyncio

import pytest

from telemetra.api.app import create_app


async def _values_arrive(client, headers, device_id: str, predicate, timeout_s: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get(f"/api/telemetry?deviceId={device_id}", headers=headers)).json()
        if predicate(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def test_a_watch_follows_the_live_feed_of_its_device(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.post("/api/register-device", headers=tenant["headers"], json={"deviceId": device["id"]})
    assert resp.status_code == 200
    assert resp.json() == {
        "deviceId": device["id"],
        "status": "registering",
        "message": "Device registration initiated",
    }
    again = await client.post("/api/register-device", headers=tenant["headers"], json={"deviceId": device["id"]})
    assert again.json()["status"] == "already_registered"

    empty = (await client.get(f"/api/telemetry?deviceId={device['id']}", headers=tenant["headers"])).json()
    assert empty == {"deviceId": device["id"], "timestamp": None, "isConnected": False}

    sent = await client.post(
        "/api/v1/devices/telemetry",
        headers=device["headers"],
        json={"voltages": [12.1, 12.2, 12.3], "currents": [1.1, 1.2, 1.3]},
    )
    assert sent.status_code == 201
    body = await _values_arrive(client, tenant["headers"], device["id"], lambda b: "voltages" in b)
    assert body["voltages"] == [12.1, 12.2, 12.3] and body["currents"] == [1.1, 1.2, 1.3]
    assert body["timestamp"] == sent.json()["timestamp"] and body["isConnected"] is True
    # A device that sends only what changed keeps its other values (device memory).
    await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"currents": [2.0, 2.0, 2.0]})
    body = await _values_arrive(client, tenant["headers"], device["id"], lambda b: b["currents"][0] == 2.0)
    assert body["voltages"] == [12.1, 12.2, 12.3]

    listing = (await client.get("/api/devices", headers=tenant["headers"])).json()
    assert listing["defaultDevice"] == device["id"]
    [entry] = listing["devices"]
    assert set(entry) == {"deviceId", "registeredAt", "lastSeen", "status", "isConnected"}
    assert entry["status"] == "registered" and entry["isConnected"] is True and entry["lastSeen"]
    # Without deviceId, the default device answers.
    assert (await client.get("/api/telemetry", headers=tenant["headers"])).json()["deviceId"] == device["id"]

    resp = await client.delete(f"/api/unregister-device/{device['id']}", headers=tenant["headers"])
    assert resp.json() == {
        "deviceId": device["id"],
        "status": "unregistered",
        "message": "Device unregistered successfully",
    }
    assert (await client.delete(f"/api/unregister-device/{device['id']}", headers=tenant["headers"])).status_code == 404
    gone = await client.get(f"/api/telemetry?deviceId={device['id']}", headers=tenant["headers"])
    assert gone.status_code == 404 and gone.json()["code"] == "device_not_registered"
    assert (await client.get("/api/devices", headers=tenant["headers"])).json() == {
        "devices": [],
        "defaultDevice": None,
    }


async def test_a_watch_starts_from_the_stored_latest_values(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    await client.post(
        "/api/v1/devices/telemetry",
        headers=device["headers"],
        json={"data": {"voltages": [1.0, 2.0], "gps": {"lat": 48.8, "lon": 2.3}}},
    )
    await client.post("/api/register-device", headers=tenant["headers"], json={"deviceId": device["id"]})
    body = (await client.get(f"/api/telemetry?deviceId={device['id']}", headers=tenant["headers"])).json()
    assert body["voltages"] == [1.0, 2.0] and body["gps"] == {"lat": 48.8, "lon": 2.3}


async def test_unknown_and_foreign_devices_and_bad_bodies(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    intruder = await make_tenant()
    for method, url, body in (
        ("POST", "/api/register-device", {"deviceId": device["id"]}),
        ("POST", "/api/register-device", {"deviceId": "nobody"}),
        ("DELETE", f"/api/unregister-device/{device['id']}", None),
        ("DELETE", "/api/unregister-device/nobody", None),
        ("GET", f"/api/telemetry?deviceId={device['id']}", None),
    ):
        resp = await client.request(method, url, headers=intruder["headers"], json=body)
        assert resp.status_code == 404 and set(resp.json()) >= {"error", "code", "message"}, (method, url)
    await client.post("/api/register-device", headers=tenant["headers"], json={"deviceId": device["id"]})
    assert (await client.get("/api/devices", headers=intruder["headers"])).json()["devices"] == []
    for body in ({}, {"deviceId": ""}, {"deviceId": 5}):
        resp = await client.post("/api/register-device", headers=tenant["headers"], json=body)
        assert resp.status_code == 422, body
    assert (await client.get("/api/devices")).status_code == 401
    assert (await client.get("/api/devices", headers=device["headers"])).status_code == 403
    # The key may come in the query string on these routes only.
    key = tenant["api_key"]
    assert (await client.get(f"/api/devices?api_key={key}")).json()["defaultDevice"] == device["id"]
    assert (await client.get(f"/api/v1/devices?api_key={key}")).status_code == 401


@pytest.fixture
async def quick_client(settings, store):
    import httpx

    app = create_app(settings.model_copy(update={"watch_inactivity_s": 0.3}), store)
    async with app.router.lifespan_context(app):
        await app.state.services.keys.ensure_admin_key(settings.admin_key)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield app, client


async def test_a_watch_not_queried_stops_and_shows_inactive_until_queried_again(quick_client) -> None:
    app, client = quick_client
    services = app.state.services
    tenant, _, key = await services.tenants.create("watcher")
    device, device_key = await services.devices.register(tenant.id, name="m", device_id="meter-idle")
    headers = {"X-API-Key": key}
    await client.post("/api/register-device", headers=headers, json={"deviceId": device.id})
    assert services.watches.running == {device.id} and services.live.hub.has_subscribers

    async def stopped() -> bool:
        return not services.watches.running

    deadline = asyncio.get_running_loop().time() + 10
    while not await stopped():
        assert asyncio.get_running_loop().time() < deadline, "the idle watch was not stopped"
        await asyncio.sleep(0.05)
    assert not services.live.hub.has_subscribers  # its subscription is released
    [entry] = (await client.get("/api/devices", headers=headers)).json()["devices"]
    assert entry["status"] == "inactive"

    # Queried again: it starts anew, from the stored values, and follows the feed again.
    await client.post("/api/v1/devices/telemetry", headers={"X-API-Key": device_key}, json={"t": 1})
    body = (await client.get(f"/api/telemetry?deviceId={device.id}", headers=headers)).json()
    assert body["t"] == 1 and services.watches.running == {device.id}
    [entry] = (await client.get("/api/devices", headers=headers)).json()["devices"]
    assert entry["status"] == "registered"


def test_a_key_in_the_query_string_never_reaches_the_logs(server_factory) -> None:
    import httpx

    from tests.conftest import TEST_ADMIN_KEY

    server = server_factory(env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_LOG_LEVEL": "DEBUG"})
    with httpx.Client(base_url=server.url, timeout=10) as http:
        key = http.post(
            "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "query-key"}
        ).json()["api_key"]
        assert http.get(f"/api/devices?api_key={key}").status_code == 200
        assert http.get(f"/api/telemetry?deviceId=nobody&api_key={key}").status_code == 404
    server.stop()
    logs = server.stdout + server.stderr
    assert "/api/devices?api_key=[REDACTED]" in logs  # the request is logged, its key is not
    assert key not in logs

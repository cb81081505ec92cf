"""Seed 002's device contract: register, status, telemetry, config, heartbeat."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

SEED_REGISTER = {
    "name": "Temperature Sensor 001",
    "description": "Living room sensor",
    "device_type": "sensor",
    "location": "Living Room",
}
SEED_TELEMETRY = {
    "data": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
    "metadata": {"battery_level": 85, "signal_strength": -45},
    "type": "sensor",
}


async def test_register_with_seed_body(client, make_tenant) -> None:
    tenant = await make_tenant()
    resp = await client.post("/api/v1/devices/register", headers=tenant["headers"], json=SEED_REGISTER)
    assert resp.status_code == 201
    body = resp.json()
    assert body["message"] == "Device registered successfully"
    device = body["device"]
    assert {"id", "name", "api_key", "status", "created_at"} <= device.keys()
    assert device["status"] == "active" and device["api_key"].startswith("tlmd_")
    assert device["created_at"].endswith("+00:00")
    again = await client.post("/api/v1/devices/register", headers=tenant["headers"], json=SEED_REGISTER)
    assert again.status_code == 409 and again.json()["code"] == "device_name_taken"


async def test_register_with_chosen_id_unique_across_tenants(client, make_tenant) -> None:
    a, b = await make_tenant(), await make_tenant()
    resp = await client.post(
        "/api/v1/devices/register", headers=a["headers"], json={"id": "bfadafebb608a154206aqu", "name": "heater"}
    )
    assert resp.status_code == 201 and resp.json()["device"]["id"] == "bfadafebb608a154206aqu"
    clash = await client.post(
        "/api/v1/devices/register", headers=b["headers"], json={"id": "bfadafebb608a154206aqu", "name": "other"}
    )
    assert clash.status_code == 409 and clash.json()["code"] == "device_id_taken"


@pytest.mark.parametrize(
    "bad_id", ["register", "Status", "telemetry", "heartbeat", "commands", "-lead", "has space", "a/b", "x" * 129, ""]
)
async def test_register_refuses_bad_or_reserved_ids(client, make_tenant, bad_id) -> None:
    tenant = await make_tenant()
    resp = await client.post("/api/v1/devices/register", headers=tenant["headers"], json={"id": bad_id, "name": "n"})
    assert resp.status_code == 422, bad_id
    listing = (await client.get("/api/v1/devices", headers=tenant["headers"])).json()
    assert listing["devices"] == []


async def test_register_without_key_is_refused(client) -> None:
    resp = await client.post("/api/v1/devices/register", json=SEED_REGISTER)
    assert resp.status_code == 401 and resp.json()["code"] == "missing_api_key"


async def test_open_registration_uses_default_tenant(client, app, admin_headers) -> None:
    app.state.services.settings.open_registration = True
    resp = await client.post("/api/v1/devices/register", json=SEED_REGISTER)
    assert resp.status_code == 201
    tenants = (await client.get("/api/v1/admin/tenants", headers=admin_headers)).json()["tenants"]
    assert [(t["name"], t["device_count"]) for t in tenants] == [("default", 1)]


async def test_register_with_device_key_is_forbidden(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    resp = await client.post("/api/v1/devices/register", headers=device["headers"], json={"name": "x"})
    assert resp.status_code == 403


async def test_telemetry_round_trip_as_sent(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=SEED_TELEMETRY)
    assert resp.status_code == 201
    body = resp.json()
    assert body["message"] == "Telemetry data received successfully" and isinstance(body["telemetry_id"], int)
    got = (await client.get("/api/v1/devices/telemetry", headers=device["headers"])).json()
    assert (got["status"], got["count"], got["limit"], got["offset"]) == ("success", 1, 100, 0)
    record = got["telemetry"][0]
    assert record["id"] == body["telemetry_id"] and record["timestamp"] == body["timestamp"]
    assert record["data"] == record["payload"] == SEED_TELEMETRY["data"]
    assert record["metadata"] == SEED_TELEMETRY["metadata"] and record["type"] == record["data_type"] == "sensor"
    # Its numbers are also points.
    latest = (await client.get(f"/api/v1/devices/{device['id']}/latest", headers=tenant["headers"])).json()
    assert {k: v["value"] for k, v in latest["latest"].items()} == {
        "temperature": 22.5,
        "humidity": 65.0,
        "pressure": 1013.25,
    }


@pytest.mark.parametrize(
    "stamp, expected",
    [
        ("2026-11-01T10:00:00", "2026-11-01T10:00:00+00:00"),  # naive ISO is UTC
        ("2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00+00:00"),
        (1793527200, "2026-11-01T10:00:00+00:00"),  # epoch seconds
        (1793527200123, "2026-11-01T10:00:00.123000+00:00"),  # epoch milliseconds
    ],
)
async def test_telemetry_timestamp_forms(client, make_tenant, make_device, stamp, expected) -> None:
    device = await make_device(await make_tenant())
    resp = await client.post(
        "/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}, "timestamp": stamp}
    )
    assert resp.status_code == 201 and resp.json()["timestamp"] == expected


async def test_messages_without_timestamp_never_collide(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    stamps = []
    for i in range(20):
        resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": i}})
        stamps.append(resp.json()["timestamp"])
    assert len(set(stamps)) == 20 and stamps == sorted(stamps)
    series = (
        await client.get(f"/api/v1/devices/{device['id']}/telemetry?limit=100&order=asc", headers=tenant["headers"])
    ).json()
    assert [p["value"] for p in series["telemetry"]["t"]] == [float(i) for i in range(20)]


async def test_own_telemetry_pagination_and_type(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    for i in range(5):
        await client.post(
            "/api/v1/devices/telemetry",
            headers=device["headers"],
            json={"data": {"i": i}, "type": "status" if i % 2 else "sensor"},
        )
    page = (await client.get("/api/v1/devices/telemetry?limit=2&offset=1", headers=device["headers"])).json()
    assert [r["data"]["i"] for r in page["telemetry"]] == [3, 2] and page["total"] == 5
    typed = (await client.get("/api/v1/devices/telemetry?type=status", headers=device["headers"])).json()
    assert [r["data"]["i"] for r in typed["telemetry"]] == [3, 1]
    too_many = await client.get("/api/v1/devices/telemetry?limit=5000", headers=device["headers"])
    assert too_many.status_code == 422 and too_many.json()["code"] == "validation_error"


async def test_status_and_heartbeat_keep_last_seen(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    before = datetime.now(timezone.utc)
    beat = await client.post("/api/v1/devices/heartbeat", headers=device["headers"])
    assert beat.status_code == 200
    assert (beat.json()["message"], beat.json()["status"], beat.json()["device_id"]) == (
        "Heartbeat received",
        "online",
        device["id"],
    )
    status = (await client.get("/api/v1/devices/status", headers=device["headers"])).json()
    assert status["status"] == "success" and status["device"]["is_online"] is True
    assert datetime.fromisoformat(status["device"]["last_seen"]) >= before
    assert status["device"]["telemetry_count"] == 0


async def test_config_reports_fields_and_attributes(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.put(
        "/api/v1/devices/config",
        headers=device["headers"],
        json={"status": "maintenance", "firmware_version": "2.1.0", "location": "Roof", "sampling_s": 30},
    )
    assert resp.status_code == 200 and resp.json()["message"] == "Device configuration updated successfully"
    got = (await client.get(f"/api/v1/devices/{device['id']}", headers=tenant["headers"])).json()["device"]
    assert (got["status"], got["firmware_version"], got["location"]) == ("maintenance", "2.1.0", "Roof")
    assert got["attributes"] == {"sampling_s": 30}
    bad = await client.put("/api/v1/devices/config", headers=device["headers"], json={"status": "exploded"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_status"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/devices/status"),
        ("POST", "/api/v1/devices/telemetry"),
        ("GET", "/api/v1/devices/telemetry"),
        ("PUT", "/api/v1/devices/config"),
        ("POST", "/api/v1/devices/heartbeat"),
    ],
)
async def test_device_routes_need_a_device_key(client, make_tenant, admin_headers, method, path) -> None:
    tenant = await make_tenant()
    assert (await client.request(method, path)).status_code == 401
    assert (await client.request(method, path, headers={"X-API-Key": "tlmd_unknown-key-xxxxxxxx"})).status_code == 401
    for other in (tenant["headers"], admin_headers):
        resp = await client.request(method, path, headers=other, json={"data": {"t": 1}})
        assert resp.status_code == 403 and resp.json()["code"] == "wrong_key_kind"

"""The console's one SSE stream: telemetry, command states and alerts of many devices, across two `telemetra
serve` processes joined by Redis; refusals (another tenant's device, too many devices, hostile ids)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

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


async def _tenant(http: httpx.AsyncClient) -> dict[str, str]:
    resp = await http.post(
        "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": f"t-{uuid.uuid4().hex[:8]}"}
    )
    return {"X-API-Key": resp.json()["api_key"]}


async def _device(http: httpx.AsyncClient, tenant: dict[str, str], **fields) -> dict:
    resp = await http.post("/api/v1/devices/register", headers=tenant, json={"name": uuid.uuid4().hex[:8], **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["device"]


async def _events(lines, count: int) -> list[tuple[str, dict]]:
    """The next ``count`` SSE events as (name, data)."""
    events, name = [], None
    while len(events) < count:
        line = await asyncio.wait_for(lines.__anext__(), 15)
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
            name = None
    return events


async def test_one_stream_carries_telemetry_commands_and_alerts_from_another_process(two_servers) -> None:
    ingesting, streaming = two_servers
    async with (
        httpx.AsyncClient(base_url=ingesting.url, timeout=10) as sender,
        httpx.AsyncClient(base_url=streaming.url, timeout=10) as viewer,
    ):
        tenant = await _tenant(sender)
        boiler, meter = await _device(sender, tenant), await _device(sender, tenant)
        unwatched = await _device(sender, tenant)
        intruder = await _tenant(sender)
        foreign = await _device(sender, intruder)
        resp = await sender.post(
            "/api/v1/rules",
            headers=tenant,
            json={
                "name": "hot",
                "key": "t",
                "severity": "critical",
                "condition": {"type": "threshold", "op": ">", "value": 50},
            },
        )
        assert resp.status_code == 201, resp.text
        rule_id = resp.json()["rule"]["id"]
        query = f"/api/v1/stream/console?devices={boiler['id']},{meter['id']}"
        async with viewer.stream("GET", query, headers=tenant) as sse:
            assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
            lines = sse.aiter_lines()
            assert await asyncio.wait_for(lines.__anext__(), 10) == ": subscribed"
            # Not ours to see: a device not asked for, another tenant's device.
            for other in (unwatched, foreign):
                resp = await sender.post(
                    "/api/v1/devices/telemetry", headers={"X-API-Key": other["api_key"]}, json={"data": {"t": 99}}
                )
                assert resp.status_code == 201
            boiler_key, meter_key = {"X-API-Key": boiler["api_key"]}, {"X-API-Key": meter["api_key"]}
            resp = await sender.post("/api/v1/devices/telemetry", headers=meter_key, json={"data": {"t": 20}})
            assert resp.status_code == 201
            [(name, data)] = await _events(lines, 1)
            assert name == "telemetry"
            assert data["device_id"] == meter["id"] and data["values"] == {"t": 20} and data["ts"]

            resp = await sender.post(
                f"/api/v1/devices/{boiler['id']}/commands", headers=tenant, json={"name": "reboot", "params": {}}
            )
            assert resp.status_code == 202, resp.text
            command_id = resp.json()["command"]["id"]
            heartbeat = await sender.post("/api/v1/devices/heartbeat", headers=boiler_key)
            assert [c["id"] for c in heartbeat.json()["commands"]] == [command_id]
            resp = await sender.post(
                f"/api/v1/devices/commands/{command_id}/ack", headers=boiler_key, json={"status": "succeeded"}
            )
            assert resp.status_code == 200, resp.text
            commands = await _events(lines, 3)
            assert [name for name, _ in commands] == ["command"] * 3
            assert [d["status"] for _, d in commands] == ["queued", "sent", "succeeded"]
            assert {(d["device_id"], d["command_id"], d["name"]) for _, d in commands} == {
                (boiler["id"], command_id, "reboot")
            }

            resp = await sender.post("/api/v1/devices/telemetry", headers=boiler_key, json={"data": {"t": 80}})
            assert resp.status_code == 201
            got = await _events(lines, 2)  # the point, and the alert it raised (evaluated after the commit)
            assert [name for name, _ in got] == ["telemetry", "alert"]
            alert = got[1][1]
            assert alert["device_id"] == boiler["id"] and alert["rule_id"] == rule_id
            assert alert["severity"] == "critical" and alert["state"] == "active"
            resp = await viewer.post(f"/api/v1/alerts/{alert['alert_id']}/ack", headers=tenant)
            assert resp.status_code == 200, resp.text
            [(name, acked)] = await _events(lines, 1)
            assert name == "alert" and acked["state"] == "acknowledged" and acked["alert_id"] == alert["alert_id"]
            assert "tenant_id" not in acked


async def test_console_stream_refusals(two_servers) -> None:
    server, _ = two_servers
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        tenant, intruder = await _tenant(http), await _tenant(http)
        device = await _device(http, tenant)
        theirs = await _device(http, intruder)
        url = "/api/v1/stream/console"
        cases = [
            ({"devices": f"{device['id']},{theirs['id']}"}, tenant, 404, "device_not_found"),
            ({"devices": device["id"]}, intruder, 404, "device_not_found"),
            ({"devices": "nope\x00" + device["id"]}, tenant, 422, "invalid_string"),
            ({"devices": "\u202e\x07" * 10}, tenant, 404, "device_not_found"),
            ({"devices": ""}, tenant, 422, "invalid_devices"),
            ({"devices": " , ,"}, tenant, 422, "invalid_devices"),
            ({"devices": ",".join(f"d{n}" for n in range(201))}, tenant, 422, "invalid_devices"),
            ({"devices": "x" * 30_000}, tenant, 422, None),  # past the bound, before any lookup
            ({"devices": device["id"]}, {}, 401, None),
            ({"devices": device["id"]}, {"X-API-Key": device["api_key"]}, 403, None),
        ]
        for params, headers, status, code in cases:
            resp = await http.get(url, params=params, headers=headers)
            assert resp.status_code == status, (params, resp.text)
            body = resp.json()
            assert set(body) >= {"error", "code", "message"}
            if code is not None:
                assert body["code"] == code
        assert "Traceback" not in server.stderr

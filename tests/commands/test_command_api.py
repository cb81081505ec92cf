"""Commands over HTTP on both backends: lifecycle, heartbeat fetch, acks, expiry, tenant isolation."""

from __future__ import annotations

from datetime import timedelta

from telemetra.domain.timeparse import utcnow


async def _setup(make_tenant, make_device):
    tenant = await make_tenant()
    device = await make_device(tenant)
    return tenant, device


async def test_command_lifecycle_over_http(client, make_tenant, make_device) -> None:
    tenant, device = await _setup(make_tenant, make_device)
    base = f"/api/v1/devices/{device['id']}/commands"
    resp = await client.post(
        base, headers=tenant["headers"], json={"name": "reboot", "params": {"delay_s": 5}, "ttl_s": 600}
    )
    assert resp.status_code == 202, resp.text
    command = resp.json()["command"]
    assert command["status"] == "queued" and command["params"] == {"delay_s": 5}
    second = (await client.post(base, headers=tenant["headers"], json={"name": "blink"})).json()["command"]

    beat = await client.post("/api/v1/devices/heartbeat", headers=device["headers"])
    assert beat.status_code == 200
    fetched = beat.json()["commands"]
    assert [c["id"] for c in fetched] == [command["id"], second["id"]]  # in order
    assert fetched[0] == {
        "id": command["id"],
        "name": "reboot",
        "params": {"delay_s": 5},
        "expires_at": command["expires_at"],
    }
    got = (await client.get(f"{base}/{command['id']}", headers=tenant["headers"])).json()["command"]
    assert got["status"] == "sent" and got["transport"] == "http"

    ack = f"/api/v1/devices/commands/{command['id']}/ack"
    resp = await client.post(ack, headers=device["headers"], json={"status": "received"})
    assert resp.status_code == 200 and resp.json()["command"]["status"] == "delivered"
    resp = await client.post(ack, headers=device["headers"], json={"status": "succeeded", "result": {"ok": 1}})
    assert resp.json()["command"]["status"] == "succeeded"
    got = (await client.get(f"{base}/{command['id']}", headers=tenant["headers"])).json()["command"]
    assert got["result"] == {"ok": 1} and got["completed_at"] is not None and got["delivered_at"] is not None
    again = await client.post(ack, headers=device["headers"], json={"status": "failed"})
    assert again.status_code == 409 and again.json()["code"] == "command_finished"

    # A finished command is not fetched again; the open one still is until acknowledged.
    beat = await client.post("/api/v1/devices/heartbeat", headers=device["headers"])
    assert [c["id"] for c in beat.json()["commands"]] == [second["id"]]
    listing = (await client.get(base, headers=tenant["headers"])).json()
    assert listing["total"] == 2 and [c["id"] for c in listing["commands"]] == [second["id"], command["id"]]
    only = (await client.get(base + "?status=succeeded", headers=tenant["headers"])).json()
    assert [c["id"] for c in only["commands"]] == [command["id"]]


async def test_bad_commands_and_acks_are_refused(client, make_tenant, make_device) -> None:
    tenant, device = await _setup(make_tenant, make_device)
    base = f"/api/v1/devices/{device['id']}/commands"
    for body in (
        {},
        {"name": ""},
        {"name": "x", "params": [1]},
        {"name": "x", "ttl_s": 0},
        {"name": "x", "ttl_s": 10**9},
        {"name": "x", "extra": 1},
        {"name": "bad name"},
    ):
        resp = await client.post(base, headers=tenant["headers"], json=body)
        assert resp.status_code == 422, body
        assert set(resp.json()) >= {"error", "code", "message"}
    assert (await client.get(base, headers=tenant["headers"])).json()["total"] == 0  # nothing stored

    command = (await client.post(base, headers=tenant["headers"], json={"name": "x"})).json()["command"]
    ack = f"/api/v1/devices/commands/{command['id']}/ack"
    for body in ({"status": "done"}, {"result": 1}, [1]):
        resp = await client.post(ack, headers=device["headers"], json=body)
        assert resp.status_code == 422, body
    missing = await client.post(
        "/api/v1/devices/commands/nope/ack", headers=device["headers"], json={"status": "received"}
    )
    assert missing.status_code == 404 and missing.json()["code"] == "command_not_found"
    # Another device cannot acknowledge this device's command.
    other = await make_device(tenant)
    resp = await client.post(ack, headers=other["headers"], json={"status": "succeeded"})
    assert resp.status_code == 404
    got = (await client.get(f"{base}/{command['id']}", headers=tenant["headers"])).json()["command"]
    assert got["status"] == "queued"


async def test_other_tenants_devices_and_commands_answer_404(client, make_tenant, make_device) -> None:
    tenant, device = await _setup(make_tenant, make_device)
    intruder = await make_tenant()
    base = f"/api/v1/devices/{device['id']}/commands"
    command = (await client.post(base, headers=tenant["headers"], json={"name": "x"})).json()["command"]
    for method, url in (
        ("POST", base),
        ("GET", base),
        ("GET", f"{base}/{command['id']}"),
        ("POST", "/api/v1/devices/nobody/commands"),
    ):
        resp = await client.request(method, url, headers=intruder["headers"], json={"name": "x"})
        assert resp.status_code == 404 and resp.json()["code"] == "device_not_found", (method, url)
    assert (await client.get(base, headers=tenant["headers"])).json()["total"] == 1
    # A device key is not a tenant key.
    assert (await client.get(base, headers=device["headers"])).status_code == 403


async def test_expired_commands_are_never_handed_out(client, app, make_tenant, make_device) -> None:
    tenant, device = await _setup(make_tenant, make_device)
    base = f"/api/v1/devices/{device['id']}/commands"
    short = (await client.post(base, headers=tenant["headers"], json={"name": "short", "ttl_s": 1})).json()["command"]
    long = (await client.post(base, headers=tenant["headers"], json={"name": "long", "ttl_s": 600})).json()["command"]
    store = app.state.services.store
    later = utcnow() + timedelta(seconds=2)
    # Past its TTL a command is not handed out even before the sweep has marked it.
    pending = await store.commands.pending_commands((await store.get_device(device["id"])).pk, later)
    assert [c.id for c in pending] == [long["id"]]
    assert await store.commands.expire_commands(later) == 1
    got = (await client.get(f"{base}/{short['id']}", headers=tenant["headers"])).json()["command"]
    assert got["status"] == "expired"
    resp = await client.post(
        f"/api/v1/devices/commands/{short['id']}/ack", headers=device["headers"], json={"status": "succeeded"}
    )
    assert resp.status_code == 409

"""A device's own routes take a login token (seed 003's POST /auth/login) wherever they take the device key."""

from __future__ import annotations

import pytest


@pytest.fixture
async def logged_in(client, make_tenant, make_device):
    tenant = await make_tenant()
    device = await make_device(tenant, id="pi-1")
    other = await make_device(tenant, id="pi-2")
    resp = await client.put(
        "/api/v1/devices/pi-1/credentials", headers=tenant["headers"], json={"password": "s3cret-pass"}
    )
    assert resp.status_code in (200, 204), resp.text
    login = await client.post("/auth/login", json={"device_id": "pi-1", "password": "s3cret-pass"})
    assert login.status_code == 200, login.text
    return {"tenant": tenant, "device": device, "other": other, "token": login.json()["token"]}


async def test_every_own_route_takes_the_token(client, logged_in) -> None:
    tenant, token = logged_in["tenant"], logged_in["token"]
    for headers in ({"Authorization": f"Bearer {token}"}, {"token": token}):
        sent = await client.post("/api/v1/devices/telemetry", headers=headers, json={"data": {"t": 1.5}})
        assert sent.status_code == 201, sent.text
        batch = await client.post(
            "/api/v1/devices/telemetry/batch", headers=headers, json=[{"data": {"t": 2}, "msg_id": "a"}]
        )
        assert batch.status_code == 200, batch.text
        assert (await client.get("/api/v1/devices/status", headers=headers)).json()["device"]["id"] == "pi-1"
        assert (await client.get("/api/v1/devices/desired", headers=headers)).status_code == 200
        assert (await client.put("/api/v1/devices/config", headers=headers, json={"fan": "on"})).status_code == 200

    made = await client.post("/api/v1/devices/pi-1/commands", headers=tenant["headers"], json={"name": "reboot"})
    command_id = made.json()["command"]["id"]
    beat = await client.post("/api/v1/devices/heartbeat", headers={"token": token})
    assert [c["id"] for c in beat.json()["commands"]] == [command_id]
    acked = await client.post(
        f"/api/v1/devices/commands/{command_id}/ack",
        headers={"Authorization": f"Bearer {token}"},
        json={"status": "succeeded", "result": {"rebooted": True}},
    )
    assert acked.status_code == 200, acked.text
    shown = (await client.get(f"/api/v1/devices/pi-1/commands/{command_id}", headers=tenant["headers"])).json()[
        "command"
    ]
    assert shown["status"] == "succeeded" and shown["result"] == {"rebooted": True}


async def test_bad_tokens_and_other_devices(client, logged_in) -> None:
    tenant, token = logged_in["tenant"], logged_in["token"]
    for headers in (
        {"token": "not-a-token"},
        {"Authorization": "Bearer " + token[:-3] + "AAA"},
        {"token": "x\x01y"},
        {"Authorization": "Bearer " + "A" * 10_000},
        {},
    ):
        resp = await client.post("/api/v1/devices/heartbeat", headers=headers)
        assert resp.status_code == 401, headers
        assert set(resp.json()) >= {"error", "code", "message"}
    # Another device's command is not found with pi-1's token.
    made = await client.post("/api/v1/devices/pi-2/commands", headers=tenant["headers"], json={"name": "x"})
    foreign = await client.post(
        f"/api/v1/devices/commands/{made.json()['command']['id']}/ack",
        headers={"token": token},
        json={"status": "succeeded"},
    )
    assert foreign.status_code == 404
    # A key, when sent, wins: a tenant key is refused on a device route even with a valid token beside it.
    mixed = await client.post("/api/v1/devices/heartbeat", headers={**tenant["headers"], "token": token})
    assert mixed.status_code == 403
    # A changed password revokes the token on every route.
    await client.put("/api/v1/devices/pi-1/credentials", headers=tenant["headers"], json={"password": "n3w-passw0rd"})
    revoked = await client.post("/api/v1/devices/telemetry", headers={"token": token}, json={"data": {"t": 1}})
    assert revoked.status_code == 401 and revoked.json()["code"] == "token_revoked"

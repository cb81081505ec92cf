"""Seed 001's POST /send: its refusals, on both backends (the MQTT path is in tests/commands)."""

from __future__ import annotations


async def test_send_refuses_bad_bodies_and_unknown_or_foreign_devices(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    for body in (
        {},
        {"device_id": device["id"]},
        {"device_id": device["id"], "switch": "on"},
        {"device_id": device["id"], "switch": 1},
        {"device_id": "", "switch": True},
        [1],
    ):
        resp = await client.post("/send", headers=tenant["headers"], json=body)
        assert resp.status_code == 422, body
        assert set(resp.json()) >= {"error", "code", "message"}
    for device_id in ("nobody", (await make_device(await make_tenant()))["id"]):
        resp = await client.post("/send", headers=tenant["headers"], json={"device_id": device_id, "switch": False})
        assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"
    assert (
        await client.post("/send", headers=device["headers"], json={"device_id": device["id"], "switch": True})
    ).status_code == 403
    listing = (await client.get(f"/api/v1/devices/{device['id']}/commands", headers=tenant["headers"])).json()
    assert listing["total"] == 0  # nothing stored


async def test_send_without_a_broker_is_503_and_stores_nothing_pending(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.post("/send", headers=tenant["headers"], json={"device_id": device["id"], "switch": True})
    assert resp.status_code == 503 and resp.json()["code"] == "transport_unavailable"
    listing = (await client.get(f"/api/v1/devices/{device['id']}/commands", headers=tenant["headers"])).json()
    assert listing["total"] == 0

"""Device state on both backends: reported (device memory and attributes), desired (versioned), delta."""

from __future__ import annotations

from telemetra.domain.device_state import desired_delta


def test_delta_is_what_the_device_has_not_reported_yet() -> None:
    reported = {"mode": "eco", "sampling_s": 30.0, "net": {"ssid": "a", "dhcp": True}, "on": 1}
    desired = {"mode": "eco", "sampling_s": 30, "net": {"ssid": "b", "dhcp": True}, "on": True, "new": None}
    assert desired_delta(desired, reported) == {"net": {"ssid": "b"}, "on": True, "new": None}
    assert desired_delta({}, reported) == {}


async def test_reported_desired_and_delta(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    dev = device["headers"]
    base = f"/api/v1/devices/{device['id']}"
    await client.post("/api/v1/devices/telemetry", headers=dev, json={"data": {"temperature": 21.5, "power": 10}})
    await client.post("/api/v1/devices/telemetry", headers=dev, json={"data": {"power": 12}})  # only what changed
    await client.put("/api/v1/devices/config", headers=dev, json={"firmware_version": "2.1.0", "mode": "eco"})

    state = (await client.get(f"{base}/state", headers=tenant["headers"])).json()
    assert state["reported"]["values"] == {"temperature": 21.5, "power": 12}
    assert state["reported"]["attributes"]["firmware_version"] == "2.1.0"
    assert state["reported"]["attributes"]["mode"] == "eco"
    assert state["desired"] is None and state["delta"] == {}
    assert (await client.get("/api/v1/devices/desired", headers=dev)).json()["version"] == 0

    resp = await client.put(
        f"{base}/desired",
        headers=tenant["headers"],
        json={"state": {"firmware_version": "2.2.0", "mode": "eco", "sampling_s": 30}},
    )
    assert resp.status_code == 200
    assert resp.json()["desired"]["version"] == 1
    assert resp.json()["delta"] == {"firmware_version": "2.2.0", "sampling_s": 30}
    stale = await client.put(f"{base}/desired", headers=tenant["headers"], json={"state": {"x": 1}, "version": 0})
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    resp = await client.put(
        f"{base}/desired",
        headers=tenant["headers"],
        json={"state": {"firmware_version": "2.2.0", "sampling_s": 30}, "version": 1},
    )
    assert resp.json()["desired"]["version"] == 2

    own = (await client.get("/api/v1/devices/desired", headers=dev)).json()
    assert own["version"] == 2 and own["delta"] == {"firmware_version": "2.2.0", "sampling_s": 30}
    beat = (await client.post("/api/v1/devices/heartbeat", headers=dev)).json()
    assert beat["desired"] == {"version": 2, "delta": {"firmware_version": "2.2.0", "sampling_s": 30}}
    # The device applies it and says so: the delta shrinks.
    await client.put("/api/v1/devices/config", headers=dev, json={"firmware_version": "2.2.0", "sampling_s": 30})
    state = (await client.get(f"{base}/state", headers=tenant["headers"])).json()
    assert state["delta"] == {} and state["desired"]["state"] == {"firmware_version": "2.2.0", "sampling_s": 30}


async def test_state_routes_refuse_foreign_devices_and_bad_bodies(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    intruder = await make_tenant()
    base = f"/api/v1/devices/{device['id']}"
    assert (await client.get(f"{base}/state", headers=intruder["headers"])).status_code == 404
    resp = await client.put(f"{base}/desired", headers=intruder["headers"], json={"state": {"x": 1}})
    assert resp.status_code == 404
    for body in ({}, {"state": [1]}, {"state": {"x": 1}, "version": -1}, {"state": {}, "extra": 1}):
        resp = await client.put(f"{base}/desired", headers=tenant["headers"], json=body)
        assert resp.status_code == 422, body
    assert (await client.get(f"{base}/state", headers=tenant["headers"])).json()["desired"] is None
    assert (await client.get("/api/v1/devices/desired", headers=tenant["headers"])).status_code == 403

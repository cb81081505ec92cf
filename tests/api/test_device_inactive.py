"""A device whose status is inactive (seed 002's PUT /config) has its telemetry refused on every ingest route with
403 device_inactive, counted in telemetra_ingest_rejected_total; nothing of it is stored. Active again, it is
accepted again. (MQTT and NATS: tests/ingest/test_inactive_over_brokers.py.)"""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.api.test_seed003 import SENSOR_DATA

PASSWORD = "inactive-password-1"


def rejected(source: str) -> float:
    labels = {"source": source, "reason": "device_inactive"}
    return REGISTRY.get_sample_value("telemetra_ingest_rejected_total", labels) or 0.0


def seed001_message(device_id: str, data_id: str) -> dict:
    props = [{"code": "instant_power", "dpId": 1, "time": 1795341600000, "value": 2500}]
    return {"bizCode": "devicePropertyMessage", "bizData": {"devId": device_id, "dataId": data_id, "properties": props}}


async def set_status(client, device: dict, status: str) -> None:
    resp = await client.put("/api/v1/devices/config", headers=device["headers"], json={"status": status})
    assert resp.status_code == 200 and resp.json()["device"]["status"] == status, resp.text


async def test_every_ingest_route_refuses_an_inactive_device(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant, password=PASSWORD)
    other = await make_device(tenant)
    token = (await client.post("/auth/login", json={"device_id": device["id"], "password": PASSWORD})).json()["token"]
    await set_status(client, device, "inactive")
    http_before, batch_before, seed_before = rejected("http"), rejected("http_batch"), rejected("seed001")

    single = {"data": {"t": 1}}
    for url, headers, body in [
        ("/api/v1/devices/telemetry", device["headers"], single),  # its own key
        (f"/api/v1/devices/{device['id']}/telemetry", tenant["headers"], single),  # its tenant's key
        ("/api/v1/devices/telemetry/batch", device["headers"], {"messages": [single, single]}),  # its own buffer
        ("/message", tenant["headers"], seed001_message(device["id"], "d-1")),  # seed 001
        ("/data", {"token": token}, SENSOR_DATA),  # seed 003
    ]:
        resp = await client.post(url, headers=headers, json=body)
        assert resp.status_code == 403, (url, resp.text)
        assert resp.json()["code"] == "device_inactive" and device["id"] in resp.json()["message"], resp.text

    # A tenant's batch for many devices: the inactive device's messages alone are refused, with the code.
    messages = [{"device_id": device["id"], "data": {"t": 2}}, {"device_id": other["id"], "data": {"t": 2}}]
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json={"messages": messages})
    assert resp.status_code == 207, resp.text
    fates = {item["device_id"]: item for item in resp.json()["results"]}
    assert fates[device["id"]]["status"] == "rejected" and fates[device["id"]]["code"] == "device_inactive"
    assert fates[other["id"]]["status"] == "accepted"

    pk = (await store.get_device(device["id"])).pk
    assert (await store.list_messages(device_pk=pk, limit=1))[1] == 0  # nothing of it stored
    assert rejected("http") - http_before == 3  # single (device key, tenant key), seed 003 (source http)
    assert rejected("http_batch") - batch_before == 3  # the own batch's two, the tenant batch's one
    assert rejected("seed001") - seed_before == 1

    await set_status(client, device, "active")  # the device may still report its configuration
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=single)
    assert resp.status_code == 201, resp.text


async def test_maintenance_is_not_inactive(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    await set_status(client, device, "maintenance")
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
    assert resp.status_code == 201, resp.text


async def test_the_admin_setting_a_device_inactive_refuses_it_at_once(
    client, admin_headers, make_tenant, make_device
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    url = "/api/v1/devices/telemetry"
    assert (await client.post(url, headers=device["headers"], json={"data": {"t": 1}})).status_code == 201
    resp = await client.put(f"/api/v1/admin/devices/{device['id']}", headers=admin_headers, json={"status": "inactive"})
    assert resp.status_code == 200, resp.text
    resp = await client.post(url, headers=device["headers"], json={"data": {"t": 1}})
    assert resp.status_code == 403 and resp.json()["code"] == "device_inactive", resp.text

"""The tenant's own device routes: edit (PATCH), delete with its data, a new key; another tenant's device 404."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.test_alerts import eventually


async def _send(client, device, **data) -> None:
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": data})
    assert resp.status_code == 201, resp.text


async def test_patch_changes_only_what_it_names(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant, location="attic", device_type="meter")
    url = f"/api/v1/devices/{device['id']}"
    resp = await client.patch(
        url, headers=tenant["headers"], json={"name": "Boiler 1", "type": "boiler", "metadata": {"floor": 2}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["device_id"], body["name"], body["type"], body["metadata"]) == (
        device["id"],
        "Boiler 1",
        "boiler",
        {"floor": 2},
    )
    assert body["location"] == "attic" and body["status"] == "active" and body["is_online"] is False
    resp = await client.patch(url, headers=tenant["headers"], json={"status": "maintenance", "location": None})
    assert resp.json()["status"] == "maintenance" and resp.json()["location"] is None
    assert resp.json()["name"] == "Boiler 1"
    stored = (await client.get(url, headers=tenant["headers"])).json()["device"]
    assert (
        stored["status"] == "maintenance" and stored["device_type"] == "boiler" and stored["attributes"] == {"floor": 2}
    )


async def test_patch_refuses_bad_bodies_and_stores_nothing(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant, name="keep")
    await make_device(tenant, name="taken")
    url = f"/api/v1/devices/{device['id']}"
    cases = [
        ({"status": "exploded"}, 422),
        ({"name": ""}, 422),
        ({"name": "x" * 101}, 422),
        ({"name": "a\x00b"}, 422),
        ({"metadata": {"k\x00": 1}}, 422),
        ({"metadata": {f"k{n}": n for n in range(300)}}, 422),
        ({"metadata": [1, 2]}, 422),
        ({"unknown": 1}, 422),
        ({"name": "taken"}, 409),
        ({"type": 5}, 422),
    ]
    for body, status in cases:
        resp = await client.patch(url, headers=tenant["headers"], json=body)
        assert resp.status_code == status, (body, resp.text)
        assert set(resp.json()) >= {"error", "code", "message"}
    resp = await client.patch(
        url,
        headers=tenant["headers"],
        content=b"[" * 10_000,
    )
    assert resp.status_code in (400, 415)
    resp = await client.patch(
        url, headers={**tenant["headers"], "content-type": "application/json"}, content=b'{"metadata": ' + b"[" * 5000
    )
    assert resp.status_code in (400, 413, 422)
    stored = (await client.get(url, headers=tenant["headers"])).json()["device"]
    assert stored["name"] == "keep" and stored["attributes"] == {} and stored["status"] == "active"


async def test_another_tenants_device_is_not_found_everywhere(client, make_tenant, make_device) -> None:
    tenant, intruder = await make_tenant(), await make_tenant()
    device = await make_device(tenant)
    url = f"/api/v1/devices/{device['id']}"
    for method, path, body in (
        ("PATCH", url, {"name": "mine"}),
        ("DELETE", url, None),
        ("POST", url + "/key/rotate", None),
    ):
        resp = await client.request(method, path, headers=intruder["headers"], json=body)
        assert resp.status_code == 404 and resp.json()["code"] == "device_not_found", (method, path)
        resp = await client.request(method, path, headers=device["headers"], json=body)  # a device key: 403
        assert resp.status_code == 403, (method, path)
        resp = await client.request(method, path.replace(device["id"], "nope"), headers=tenant["headers"], json=body)
        assert resp.status_code == 404
    assert (await client.get(url, headers=tenant["headers"])).json()["device"]["name"] == device["name"]
    await _send(client, device, t=1)  # its key still works


async def test_rotate_shows_the_key_once_and_revokes_or_graces_the_old_one(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    url = f"/api/v1/devices/{device['id']}/key/rotate"
    resp = await client.post(url, headers=tenant["headers"])
    assert resp.status_code == 201, resp.text
    first = resp.json()
    assert first["api_key"].startswith("tlmd_") and first["key_id"] == first["key"]["id"]
    assert [k["status"] for k in first["previous"]] == ["revoked"]
    refused = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
    assert refused.status_code == 401
    new = {"id": device["id"], "headers": {"X-API-Key": first["api_key"]}}
    await _send(client, new, t=2)

    resp = await client.post(url, headers=tenant["headers"], json={"grace_s": 3600})
    assert resp.status_code == 201
    assert [(k["id"], k["status"]) for k in resp.json()["previous"]] == [(first["key_id"], "active")]
    assert resp.json()["previous"][0]["expires_at"] is not None
    await _send(client, new, t=3)  # within its grace
    listed = (await client.get("/api/v1/keys?kind=device", headers=tenant["headers"])).json()["keys"]
    assert all(first["api_key"] not in str(k) for k in listed)  # shown once: never listed
    for body in ({"grace_s": -1}, {"grace_s": 10**12}, {"expires_at": "0001-01-01T00:00:00Z"}, {"x": 1}):
        resp = await client.post(url, headers=tenant["headers"], json=body)
        assert resp.status_code == 422, body


async def test_delete_removes_the_device_its_data_and_its_keys(client, app, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device, other = await make_device(tenant), await make_device(tenant)
    for n in range(3):
        await _send(client, device, t=n)
    await _send(client, other, t=9)
    resp = await client.post(
        f"/api/v1/devices/{device['id']}/commands", headers=tenant["headers"], json={"name": "reboot"}
    )
    assert resp.status_code == 202
    store = app.state.services.store
    pk = (await store.get_device(device["id"])).pk
    await eventually(lambda: store.latest_values(pk))

    resp = await client.delete(f"/api/v1/devices/{device['id']}", headers=tenant["headers"])
    assert resp.status_code == 204 and resp.content == b""
    assert (await client.get(f"/api/v1/devices/{device['id']}", headers=tenant["headers"])).status_code == 404
    assert (await client.delete(f"/api/v1/devices/{device['id']}", headers=tenant["headers"])).status_code == 404
    refused = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
    assert refused.status_code == 401
    assert await store.latest_values(pk) == {} and await store.list_keys(device_pk=pk) == []
    # The same id registered again starts empty.
    again = await make_device(tenant, id=device["id"])
    fresh_pk = (await store.get_device(again["id"])).pk
    assert await store.latest_values(fresh_pk) == {}
    assert (await store.commands.list_commands(fresh_pk))[1] == 0
    listed = await client.get(f"/api/v1/devices/{again['id']}/telemetry", headers=tenant["headers"])
    assert listed.json()["telemetry"] == {}
    # The other device is untouched.
    other_pk = (await store.get_device(other["id"])).pk
    assert set(await store.latest_values(other_pk)) == {"t"}


async def test_concurrent_deletes_answer_once(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    answers = await asyncio.gather(
        *(client.delete(f"/api/v1/devices/{device['id']}", headers=tenant["headers"]) for _ in range(5))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(204) >= 1 and set(statuses) <= {204, 404}


@pytest.mark.parametrize("path", ["/api/v1/devices/a%00b", "/api/v1/devices/" + "x" * 5000])
async def test_hostile_ids(client, make_tenant, path) -> None:
    tenant = await make_tenant()
    for method in ("PATCH", "DELETE"):
        resp = await client.request(method, path, headers=tenant["headers"], json={"name": "n"})
        assert resp.status_code in (404, 422), resp.text
        assert set(resp.json()) >= {"error", "code", "message"}

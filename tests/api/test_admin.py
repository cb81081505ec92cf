"""Admin routes: only the admin key opens them; tenants, keys, devices, dashboard, telemetry."""

from __future__ import annotations

import pytest


async def test_admin_routes_refuse_other_keys(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    routes = [
        ("GET", "/api/v1/admin/tenants"),
        ("POST", "/api/v1/admin/tenants"),
        ("GET", "/api/v1/admin/devices"),
        ("GET", f"/api/v1/admin/devices/{device['id']}"),
        ("DELETE", f"/api/v1/admin/devices/{device['id']}"),
        ("GET", "/api/v1/admin/dashboard"),
        ("GET", "/api/v1/admin/telemetry"),
    ]
    for method, path in routes:
        resp = await client.request(method, path)
        assert resp.status_code == 401, (method, path)
        assert resp.json()["code"] == "missing_api_key"
        resp = await client.request(method, path, headers={"X-API-Key": "tlma_not-a-real-key-at-all"})
        assert resp.status_code == 401 and resp.json()["code"] == "invalid_api_key"
        for other in (tenant["headers"], device["headers"]):
            resp = await client.request(method, path, headers=other)
            assert resp.status_code == 403, (method, path)
            assert resp.json() == {"error": "Forbidden", "code": "wrong_key_kind", "message": resp.json()["message"]}
    # The device survived the refused DELETE.
    assert (await client.get("/api/v1/devices/status", headers=device["headers"])).status_code == 200


async def test_create_tenant_shows_key_once_and_lists(client, admin_headers) -> None:
    resp = await client.post("/api/v1/admin/tenants", headers=admin_headers, json={"name": "acme"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["tenant"]["name"] == "acme" and body["api_key"].startswith("tlmt_")
    assert body["key"]["prefix"] == body["api_key"][: len(body["key"]["prefix"])]
    dup = await client.post("/api/v1/admin/tenants", headers=admin_headers, json={"name": "acme"})
    assert dup.status_code == 409 and dup.json()["code"] == "tenant_name_taken"
    listing = (await client.get("/api/v1/admin/tenants", headers=admin_headers)).json()
    assert [(t["name"], t["device_count"]) for t in listing["tenants"]] == [("acme", 0)]
    assert "api_key" not in str(listing)
    keys = (await client.get(f"/api/v1/admin/tenants/{body['tenant']['id']}/keys", headers=admin_headers)).json()
    assert body["api_key"] not in str(keys)


async def test_tenant_keys_issue_scope_and_revoke(client, admin_headers, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    tid = tenant["tenant"]["id"]
    resp = await client.post(
        f"/api/v1/admin/tenants/{tid}/keys", headers=admin_headers, json={"scope": "ingest", "name": "gateway"}
    )
    assert resp.status_code == 201 and resp.json()["key"]["scope"] == "ingest"
    ingest = {"X-API-Key": resp.json()["api_key"]}
    # An ingest key sends telemetry for its tenant's devices and nothing else.
    sent = await client.post(f"/api/v1/devices/{device['id']}/telemetry", headers=ingest, json={"data": {"t": 1}})
    assert sent.status_code == 201
    for path in ("/api/v1/devices", f"/api/v1/devices/{device['id']}", f"/api/v1/devices/{device['id']}/latest"):
        denied = await client.get(path, headers=ingest)
        assert denied.status_code == 403 and denied.json()["code"] == "insufficient_scope"
    denied = await client.post("/api/v1/devices/register", headers=ingest, json={"name": "x"})
    assert denied.status_code == 403
    # Revocation stops the key at once.
    key_id = resp.json()["key"]["id"]
    revoked = await client.delete(f"/api/v1/admin/tenants/{tid}/keys/{key_id}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["key"]["revoked_at"] is not None
    after = await client.post(f"/api/v1/devices/{device['id']}/telemetry", headers=ingest, json={"data": {"t": 2}})
    assert after.status_code == 401 and after.json()["code"] == "api_key_revoked"


async def test_expired_key_is_refused(client, admin_headers, make_tenant) -> None:
    tenant = await make_tenant()
    resp = await client.post(
        f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys",
        headers=admin_headers,
        json={"expires_at": "2020-01-01T00:00:00Z"},
    )
    assert resp.status_code == 201
    got = await client.get("/api/v1/devices", headers={"X-API-Key": resp.json()["api_key"]})
    assert got.status_code == 401 and got.json()["code"] == "api_key_expired"


async def test_key_routes_of_unknown_tenant_or_key(client, admin_headers, make_tenant) -> None:
    other = await make_tenant()
    tenant = await make_tenant()
    assert (await client.post("/api/v1/admin/tenants/999999/keys", headers=admin_headers, json={})).status_code == 404
    assert (await client.delete("/api/v1/admin/tenants/999999/keys/1", headers=admin_headers)).status_code == 404
    # Another tenant's key id is not found under this tenant, and stays usable.
    other_key = other["key"]["id"]
    resp = await client.delete(
        f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys/{other_key}", headers=admin_headers
    )
    assert resp.status_code == 404 and resp.json()["code"] == "key_not_found"
    assert (await client.get("/api/v1/devices", headers=other["headers"])).status_code == 200


async def test_admin_devices_filter_update_delete(client, admin_headers, make_tenant, make_device) -> None:
    a, b = await make_tenant(), await make_tenant()
    d1 = await make_device(a, name="Boiler", device_type="heater")
    await make_device(b, name="Meter", device_type="meter")
    await client.post("/api/v1/devices/telemetry", headers=d1["headers"], json={"data": {"t": 1}})
    listing = (await client.get("/api/v1/admin/devices?type=heater", headers=admin_headers)).json()
    assert [d["id"] for d in listing["devices"]] == [d1["id"]]
    assert listing["devices"][0]["telemetry_count"] == 1 and listing["pagination"]["total"] == 1
    page = (await client.get("/api/v1/admin/devices?per_page=1&page=2", headers=admin_headers)).json()
    assert len(page["devices"]) == 1 and page["pagination"] == {
        "page": 2,
        "per_page": 1,
        "total": 2,
        "pages": 2,
        "has_next": False,
        "has_prev": True,
    }
    detail = (await client.get(f"/api/v1/admin/devices/{d1['id']}", headers=admin_headers)).json()["device"]
    assert detail["statistics"]["total_telemetry_records"] == 1 and len(detail["recent_telemetry"]) == 1
    updated = await client.put(
        f"/api/v1/admin/devices/{d1['id']}", headers=admin_headers, json={"status": "maintenance", "location": "Cellar"}
    )
    assert updated.status_code == 200
    assert (updated.json()["device"]["status"], updated.json()["device"]["location"]) == ("maintenance", "Cellar")
    bad = await client.put(f"/api/v1/admin/devices/{d1['id']}", headers=admin_headers, json={"status": "broken"})
    assert bad.status_code == 422
    gone = await client.delete(f"/api/v1/admin/devices/{d1['id']}", headers=admin_headers)
    assert gone.status_code == 200 and gone.json() == {"message": "Device Boiler deleted successfully"}
    assert (await client.get(f"/api/v1/admin/devices/{d1['id']}", headers=admin_headers)).status_code == 404
    assert (await client.get("/api/v1/devices/status", headers=d1["headers"])).status_code == 401


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_admin_unknown_device_is_404_not_500(client, admin_headers, method) -> None:
    resp = await client.request(
        method,
        "/api/v1/admin/devices/no-such-device",
        headers=admin_headers,
        json={"status": "active"} if method == "PUT" else None,
    )
    assert resp.status_code == 404
    assert resp.json()["error"] == "Not Found" and resp.json()["code"] == "device_not_found"


async def test_dashboard_and_all_telemetry(client, admin_headers, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    d1, d2 = await make_device(tenant), await make_device(tenant, device_type="meter")
    await make_device(tenant)
    await client.post("/api/v1/devices/telemetry", headers=d1["headers"], json={"data": {"a": 1, "b": 2}})
    await client.post("/api/v1/devices/telemetry", headers=d2["headers"], json={"data": {"a": 3}, "type": "status"})
    stats = (await client.get("/api/v1/admin/dashboard", headers=admin_headers)).json()["statistics"]
    assert stats["tenants"] == 1
    assert stats["devices"] == {"total": 3, "active": 3, "inactive": 0, "maintenance": 0, "online": 2}
    assert stats["telemetry"] == {"total_records": 2, "last_24h": 2, "points_today": 3}
    assert stats["device_types"] == [{"type": "meter", "count": 1}, {"type": "sensor", "count": 2}]
    every = (await client.get("/api/v1/admin/telemetry", headers=admin_headers)).json()
    assert every["pagination"]["total"] == 2 and every["telemetry"][0]["device_id"] == d2["id"]
    one = (await client.get(f"/api/v1/admin/telemetry?device_id={d1['id']}", headers=admin_headers)).json()
    assert [t["data"] for t in one["telemetry"]] == [{"a": 1, "b": 2}]
    typed = (await client.get("/api/v1/admin/telemetry?type=status", headers=admin_headers)).json()
    assert [t["device_id"] for t in typed["telemetry"]] == [d2["id"]]


async def test_admin_sets_a_tenants_retention(client, admin_headers, make_tenant) -> None:
    tenant = await make_tenant()
    url = f"/api/v1/admin/tenants/{tenant['tenant']['id']}"
    resp = await client.put(url, headers=admin_headers, json={"retention_days": 365})
    assert resp.status_code == 200 and resp.json()["tenant"]["retention_days"] == 365
    listed = (await client.get("/api/v1/admin/tenants", headers=admin_headers)).json()["tenants"]
    assert [t["retention_days"] for t in listed if t["id"] == tenant["tenant"]["id"]] == [365]
    assert (await client.put(url, headers=admin_headers, json={"retention_days": 0})).status_code == 422
    assert (await client.put(url, headers=tenant["headers"], json={"retention_days": 1})).status_code == 403
    assert (
        await client.put("/api/v1/admin/tenants/999", headers=admin_headers, json={"retention_days": 1})
    ).status_code == 404
    forever = await client.put(url, headers=admin_headers, json={"retention_days": None})
    assert forever.json()["tenant"]["retention_days"] is None

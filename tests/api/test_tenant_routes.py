"""Tenant routes: a tenant sees its own devices only; another tenant's device is 404."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


async def test_cross_tenant_access_is_404(client, make_tenant, make_device) -> None:
    a, b = await make_tenant(), await make_tenant()
    mine = await make_device(a)
    theirs = await make_device(b)
    await client.post("/api/v1/devices/telemetry", headers=theirs["headers"], json={"data": {"secret": 42}})
    for path in (
        f"/api/v1/devices/{theirs['id']}",
        f"/api/v1/devices/{theirs['id']}/telemetry",
        f"/api/v1/devices/{theirs['id']}/latest",
    ):
        resp = await client.get(path, headers=a["headers"])
        assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"
        # Same answer as for an id that exists nowhere: existence is not revealed.
        nowhere = await client.get(path.replace(theirs["id"], "no-such-device"), headers=a["headers"])
        assert nowhere.json() == resp.json()
    posted = await client.post(
        f"/api/v1/devices/{theirs['id']}/telemetry", headers=a["headers"], json={"data": {"t": 1}}
    )
    assert posted.status_code == 404
    listing = (await client.get("/api/v1/devices", headers=a["headers"])).json()
    assert [d["id"] for d in listing["devices"]] == [mine["id"]]
    latest = (await client.get(f"/api/v1/devices/{theirs['id']}/latest", headers=b["headers"])).json()
    assert latest["latest"]["secret"]["value"] == 42.0  # untouched by a's attempt


async def test_time_series_query_with_keys_and_range(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for i in range(6):
        await client.post(
            "/api/v1/devices/telemetry",
            headers=device["headers"],
            json={"data": {"a": i, "b": -i, "label": f"s{i}"}, "timestamp": (t0 + timedelta(hours=i)).isoformat()},
        )
    url = f"/api/v1/devices/{device['id']}/telemetry"
    got = (
        await client.get(
            url,
            headers=tenant["headers"],
            params={"keys": "a,label", "start": "2026-11-01T01:00:00Z", "end": "2026-11-01T04:00:00", "order": "asc"},
        )
    ).json()
    assert set(got["telemetry"]) == {"a", "label"} and got["count"] == 6
    assert [p["value"] for p in got["telemetry"]["a"]] == [1.0, 2.0, 3.0]
    assert got["telemetry"]["a"][0]["timestamp"] == "2026-11-01T01:00:00+00:00"
    # A date alone is midnight; end is exclusive.
    day = (
        await client.get(
            url, headers=tenant["headers"], params={"start": "2026-11-01", "end": "2026-11-02", "keys": "b", "limit": 2}
        )
    ).json()
    assert [p["value"] for p in day["telemetry"]["b"]] == [-5.0, -4.0]  # newest first by default
    for params in ({"start": "yesterday"}, {"start": "2026-11-02", "end": "2026-11-01"}, {"limit": 0}):
        bad = await client.get(url, headers=tenant["headers"], params=params)
        assert bad.status_code == 422, params


async def test_tenant_device_list_and_detail(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    first = await make_device(tenant, name="Alpha", device_type="meter")
    await make_device(tenant, name="Beta")
    listing = (await client.get("/api/v1/devices?type=meter", headers=tenant["headers"])).json()
    assert [d["name"] for d in listing["devices"]] == ["Alpha"] and listing["pagination"]["total"] == 1
    detail = (await client.get(f"/api/v1/devices/{first['id']}", headers=tenant["headers"])).json()
    assert detail["device"]["id"] == first["id"] and "api_key" not in detail["device"]

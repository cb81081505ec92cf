"""GET /api/v1/fleet/devices: search by id or name prefix, filters, keyset paging; per tenant; hostile input."""

from __future__ import annotations

import base64

import orjson
import pytest


async def _fleet(client, tenant, **params) -> dict:
    resp = await client.get("/api/v1/fleet/devices", headers=tenant["headers"], params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _all_pages(client, tenant, cursor=None, **params) -> list[dict]:
    items, pages = [], 0
    while True:
        body = await _fleet(client, tenant, **params, **({"cursor": cursor} if cursor else {}))
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert body["total"] is None or (pages == 1 and "cursor" not in params)
        assert pages < 100


@pytest.fixture
async def fleet(client, make_tenant, make_device):
    tenant, other = await make_tenant(), await make_tenant()
    devices = []
    for n in range(23):
        devices.append(
            await make_device(
                tenant,
                id=f"unit-{n:03d}",
                name=f"{'Boiler' if n % 3 == 0 else 'Meter'} {n}",
                device_type="boiler" if n % 3 == 0 else "meter",
                location=f"floor-{n % 2}",
            )
        )
    await make_device(other, id="unit-999", name="Boiler theirs")
    return tenant, other, devices


async def test_pages_cover_every_device_once_in_id_order(client, fleet) -> None:
    tenant, _, devices = fleet
    first = await _fleet(client, tenant, limit=10)
    assert first["total"] == 23 and len(first["items"]) == 10 and first["next_cursor"]
    items = await _all_pages(client, tenant, limit=10)
    assert [i["device_id"] for i in items] == sorted(d["id"] for d in devices)
    assert set(items[0]) == {"device_id", "name", "type", "status", "location", "online", "last_seen", "latest"}
    assert items[0]["online"] is False and items[0]["last_seen"] is None and items[0]["latest"] == {}


async def test_paging_is_stable_while_devices_come_and_go(client, fleet, make_device) -> None:
    tenant, _, devices = fleet
    first = await _fleet(client, tenant, limit=10)
    await make_device(tenant, id="unit-000a")  # sorts inside the first page, already read
    assert (await client.delete("/api/v1/devices/unit-015", headers=tenant["headers"])).status_code == 204
    rest = await _all_pages(client, tenant, limit=10, cursor=first["next_cursor"])
    seen = [i["device_id"] for i in first["items"] + rest]
    assert len(seen) == len(set(seen)) == 22
    assert "unit-015" not in seen and "unit-000a" not in seen


async def test_search_and_filters(client, fleet) -> None:
    tenant, _, devices = fleet
    assert [i["device_id"] for i in (await _fleet(client, tenant, q="unit-01"))["items"]] == [
        f"unit-{n:03d}" for n in range(10, 20)
    ]
    boilers = await _fleet(client, tenant, q="boiler")  # a name prefix, any case
    assert boilers["total"] == 8 and {i["type"] for i in boilers["items"]} == {"boiler"}
    assert (await _fleet(client, tenant, type="boiler", location="floor-0"))["total"] == 4
    assert (await _fleet(client, tenant, status="maintenance"))["total"] == 0
    for q in ("%", "_", "unit-0%", "Boiler_", "\U0010ffff", "ünit", "' OR 1=1 --"):
        assert (await _fleet(client, tenant, q=q))["items"] == [], q

    resp = await client.post(
        "/api/v1/devices/telemetry", headers=devices[4]["headers"], json={"data": {"t": 21.5, "label": "x"}}
    )
    assert resp.status_code == 201
    resp = await client.patch("/api/v1/devices/unit-005", headers=tenant["headers"], json={"status": "maintenance"})
    assert resp.status_code == 200
    online = await _fleet(client, tenant, online="true")
    assert [(i["device_id"], i["online"], i["latest"]) for i in online["items"]] == [
        ("unit-004", True, {"t": 21.5, "label": "x"})
    ]
    assert online["items"][0]["last_seen"] is not None
    offline = await _fleet(client, tenant, online="false", limit=200)
    assert offline["total"] == 22 and "unit-004" not in {i["device_id"] for i in offline["items"]}
    assert [i["device_id"] for i in (await _fleet(client, tenant, status="maintenance"))["items"]] == ["unit-005"]


async def test_another_tenants_devices_never_show(client, fleet) -> None:
    tenant, other, _ = fleet
    assert [i["device_id"] for i in (await _fleet(client, other))["items"]] == ["unit-999"]
    assert "unit-999" not in {i["device_id"] for i in await _all_pages(client, tenant, limit=200)}
    # A cursor made by another tenant's listing only says where to start: it shows nothing of theirs.
    theirs = await _fleet(client, other, limit=1)
    assert theirs["next_cursor"] is None
    cursor = base64.urlsafe_b64encode(orjson.dumps({"after": "unit-998"})).decode().rstrip("=")
    assert (await _fleet(client, tenant, cursor=cursor))["items"] == []


async def test_hostile_queries_are_refused(client, fleet) -> None:
    tenant, _, _ = fleet
    bad_cursors = [
        "garbage!!",
        "e30",  # {}
        base64.urlsafe_b64encode(orjson.dumps({"after": 5})).decode(),
        base64.urlsafe_b64encode(orjson.dumps({"after": "a b"})).decode(),
        base64.urlsafe_b64encode(orjson.dumps(["x"])).decode(),
        "x" * 401,
    ]
    cases = [
        ({"q": "a\x00b"}, "invalid_string"),
        ({"q": "q" * 101}, None),
        ({"limit": 10**12}, None),
        ({"limit": 0}, None),
        ({"limit": -1}, None),
        ({"online": "maybe"}, None),
        ({"type": "t" * 201}, None),
        *(({"cursor": c}, "invalid_cursor" if len(c) <= 400 else None) for c in bad_cursors),
    ]
    for params, code in cases:
        resp = await client.get("/api/v1/fleet/devices", headers=tenant["headers"], params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert set(resp.json()) >= {"error", "code", "message"}
        if code:
            assert resp.json()["code"] == code, params
    assert (await client.get("/api/v1/fleet/devices")).status_code == 401


async def test_the_list_follows_renames_and_new_devices(client, fleet, make_device) -> None:
    tenant, _, _ = fleet
    resp = await client.patch("/api/v1/devices/unit-003", headers=tenant["headers"], json={"name": "Zeppelin"})
    assert resp.status_code == 200
    assert [i["device_id"] for i in (await _fleet(client, tenant, q="zepp"))["items"]] == ["unit-003"]
    assert "unit-003" not in {i["device_id"] for i in (await _fleet(client, tenant, q="boiler 3"))["items"]}
    await make_device(tenant, id="zz-new", name="Newcomer")
    assert [i["device_id"] for i in (await _fleet(client, tenant, q="new"))["items"]] == ["zz-new"]
    assert (await _fleet(client, tenant))["total"] == 24

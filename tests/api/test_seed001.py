"""Seed 001's contract: POST /message keeps two properties, GET /report gives Wh per day and hour."""

from __future__ import annotations

import pytest

SEED_MESSAGE = {
    "bizCode": "devicePropertyMessage",
    "bizData": {
        "devId": "bfadafebb608a154206aqu",
        "productId": "ixhko1cls7lzpwsf",
        "properties": [{"code": "instant_power", "dpId": 1, "time": 1732631573782, "value": 2500}],
    },
    "ts": 1732631573782,
}


def prop_message(device_id: str, iso: str, data_id: str | None = None, **props: float) -> dict:
    from datetime import datetime

    ms = int(datetime.fromisoformat(iso).timestamp() * 1000)
    biz = {
        "devId": device_id,
        "properties": [{"code": c, "dpId": i, "time": ms, "value": v} for i, (c, v) in enumerate(props.items())],
    }
    if data_id:
        biz["dataId"] = data_id
    return {"bizCode": "devicePropertyMessage", "bizData": biz, "ts": ms}


async def test_the_seed_example_is_stored_and_its_device_registered(client, make_tenant, store) -> None:
    tenant = await make_tenant()
    body = {
        **SEED_MESSAGE,
        "bizData": {
            **SEED_MESSAGE["bizData"],
            "dataId": "d-1",
            "properties": [
                *SEED_MESSAGE["bizData"]["properties"],
                {"code": "switch", "dpId": 2, "time": 1732631573782, "value": True},
            ],
        },
    }

    resp = await client.post("/message", headers=tenant["headers"], json=body)

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ok", "inserted": 1, "inserted_rows": 1}  # "switch" is not kept
    device = (await client.get("/api/v1/devices/bfadafebb608a154206aqu", headers=tenant["headers"])).json()
    assert device["device"]["device_type"] == "heater"
    latest = (await client.get("/api/v1/devices/bfadafebb608a154206aqu/latest", headers=tenant["headers"])).json()
    assert latest["latest"] == {"instant_power": {"timestamp": "2024-11-26T14:32:53.782000+00:00", "value": 2500.0}}
    again = await client.post("/message", headers=tenant["headers"], json=body)  # same dataId: a replay
    assert again.json() == {"status": "ok", "inserted": 0, "inserted_rows": 0}
    assert (await store.list_messages(limit=1))[1] == 1


@pytest.mark.parametrize(
    "mutate, status, code",
    [
        (lambda m: {**m, "bizCode": "deviceOnlineMessage"}, 400, "unsupported_biz_code"),
        (lambda m: {**m, "bizData": {"properties": m["bizData"]["properties"]}}, 422, "validation_error"),
        (
            lambda m: {
                **m,
                "bizData": {
                    **m["bizData"],
                    "properties": [{"code": "instant_power", "time": 1732631573782, "value": float("nan")}],
                },
            },
            422,
            None,
        ),
    ],
)
async def test_bad_messages_are_refused_and_nothing_is_stored(client, make_tenant, store, mutate, status, code) -> None:
    tenant = await make_tenant()
    import json

    resp = await client.post(
        "/message",
        headers={**tenant["headers"], "Content-Type": "application/json"},
        content=json.dumps(mutate(SEED_MESSAGE)),
    )
    assert resp.status_code == status, resp.text
    assert code is None or resp.json()["code"] == code
    assert (await store.list_messages(limit=1))[1] == 0
    assert (await client.post("/message", json=SEED_MESSAGE)).status_code == 401
    assert (await store.get_device("bfadafebb608a154206aqu")) is None


async def test_another_clients_device_is_not_theirs(client, make_tenant, make_device) -> None:
    owner, intruder = await make_tenant(), await make_tenant()
    device = await make_device(owner, id="heater-owned")
    resp = await client.post(
        "/message",
        headers=intruder["headers"],
        json=prop_message(device["id"], "2026-11-01T00:00:00+00:00", instant_power=1),
    )
    assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"


async def test_reports_of_power_and_temperature(client, make_tenant) -> None:
    tenant = await make_tenant()
    for iso, props in [
        ("2024-12-18T00:00:00+00:00", {"instant_power": 1000, "temp_interior": 18}),
        ("2024-12-18T00:30:00+00:00", {"instant_power": 3000, "temp_interior": 21}),
        ("2024-12-18T01:00:00+00:00", {"instant_power": 0}),
        ("2024-12-18T01:20:00+00:00", {"temp_interior": 22}),
    ]:
        resp = await client.post("/message", headers=tenant["headers"], json=prop_message("heater-9", iso, **props))
        assert resp.status_code == 200, resp.text
    day = {"start": "2024-12-18", "end": "2024-12-19"}

    report = (await client.get("/report", headers=tenant["headers"], params=day)).json()
    # 1000 W for 30 min + 3000 W for 30 min; then 0 W, known for the next hour.
    assert report == {"2024-12-18": {"00:00": 2000.0, "01:00": 0.0}}
    assert (await client.get("/report/power", headers=tenant["headers"], params=day)).json() == report
    paris = (await client.get("/report", headers=tenant["headers"], params={**day, "tz": "Europe/Paris"})).json()
    assert paris == {"2024-12-18": {"01:00": 2000.0, "02:00": 0.0}}
    temperature = (await client.get("/report/temperature", headers=tenant["headers"], params=day)).json()
    assert temperature == {"2024-12-18": {"00:00": 19.5, "01:00": 22.0}}
    assert (await client.get("/report", params=day)).status_code == 401


async def test_an_ingest_key_sends_for_known_devices_but_registers_none(
    client, make_tenant, make_device, store
) -> None:
    """As at /register (403) and in a batch (404 per message): a key of scope ingest never creates a device,
    so a tenant cannot claim ids (unique across tenants) through /message first."""
    tenant, other = await make_tenant(), await make_tenant()
    known = await make_device(tenant, id="heater-known")
    created = await client.post("/api/v1/keys", headers=tenant["headers"], json={"scope": "ingest", "name": "gw"})
    gateway = {"X-API-Key": created.json()["api_key"]}

    unknown = await client.post(
        "/message",
        headers=gateway,
        json=prop_message("heater-unclaimed", "2024-12-18T10:00:00+00:00", instant_power=1000),
    )
    sent = await client.post(
        "/message", headers=gateway, json=prop_message(known["id"], "2024-12-18T10:00:00+00:00", instant_power=1000)
    )

    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["code"] == "device_not_found" and "scope 'ingest'" in unknown.json()["message"]
    assert await store.get_device("heater-unclaimed") is None
    assert sent.status_code == 200 and sent.json()["inserted"] == 1
    # The id is still free for whoever registers it, another tenant included.
    claimed = await client.post(
        "/message",
        headers=other["headers"],
        json=prop_message("heater-unclaimed", "2024-12-18T10:00:00+00:00", instant_power=1000),
    )
    assert claimed.status_code == 200
    assert (await store.get_device("heater-unclaimed")).tenant_id == other["tenant"]["id"]

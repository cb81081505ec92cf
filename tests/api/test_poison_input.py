"""What a database cannot hold (a NUL character, a non-zero number that reads as 0, two values for one key, a
device id with a NUL) is refused at the edge, per message, on both backends: a 4xx naming the field, nothing
stored, and a batch's other messages stored. Before, PostgreSQL failed the whole write (503 for the sender and
everyone batched with it, 500 for a NUL id) and SQLite failed a replayed NUL msg_id with a KeyError."""

from __future__ import annotations

import re

from telemetra.store import DeviceFilter
from tests.conftest import TEST_ADMIN_KEY

JSON = {"Content-Type": "application/json"}


async def _stored(store) -> int:
    return (await store.list_messages(limit=1))[1]


async def test_a_single_message_with_a_nul_is_refused_naming_the_field(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    await make_device(tenant, id="poisoned")
    cases = {
        b'{"data": {"s": "a\\u0000b"}}': ("invalid_string", "data.s"),
        b'{"data": {"j": {"x": ["ok", "\\u0000"]}}}': ("invalid_string", "data.j.x.1"),
        b'{"data": {"t": 1}, "metadata": {"m": {"n": "\\u0000"}}}': ("invalid_string", "metadata.m.n"),
        b'{"data": {"t": 1}, "type": "a\\u0000b"}': ("invalid_type", "type"),
        b'{"data": {"t": 1}, "msg_id": "a\\u0000b"}': ("invalid_msg_id", "msg_id"),
    }
    for body, (code, where) in cases.items():
        for _ in range(2):  # twice: a repeated NUL msg_id raised KeyError on SQLite
            answer = await client.post(
                "/api/v1/devices/poisoned/telemetry", content=body, headers={**tenant["headers"], **JSON}
            )
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["code"] == code and where in answer.json()["message"], answer.text
    assert await _stored(store) == 0
    ok = await client.post("/api/v1/devices/poisoned/telemetry", json={"data": {"s": "a b"}}, headers=tenant["headers"])
    assert ok.status_code == 201


async def test_a_poisoned_message_in_a_batch_is_refused_alone(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    await make_device(tenant, id="good-1")
    await make_device(tenant, id="good-2")
    body = [
        {"device_id": "good-1", "data": {"t": 1}},
        {"device_id": "good-1", "data": {"t": 2, "s": "a\x00b"}},
        {"device_id": "good-1\x00", "data": {"t": 3}},
        {"device_id": "good-2", "data": {"t": 4}, "msg_id": "m\x00"},
        {"device_id": "good-2", "data": {"a": {"b": 1}, "a.b": 2}},
        {"device_id": "good-2", "data": {"t": 5}, "type": "\x00"},
        {"device_id": "good-2", "data": {"t": 6}},
    ]
    answer = await client.post("/api/v1/telemetry/batch", json=body, headers=tenant["headers"])
    assert answer.status_code == 207, answer.text
    results = answer.json()["results"]
    assert [r.get("code") for r in results] == [
        None,
        "invalid_string",
        "device_not_found",
        "invalid_msg_id",
        "key_collision",
        "invalid_type",
        None,
    ]
    assert await _stored(store) == 2
    device = await client.post(
        "/api/v1/devices/register", headers=tenant["headers"], json={"name": "own", "id": "own-batch"}
    )
    own = await client.post(
        "/api/v1/devices/telemetry/batch",
        headers={"X-API-Key": device.json()["device"]["api_key"]},
        json=[{"t": 1}, {"s": "\x00"}, {"t": 2}],
    )
    assert [r.get("code") for r in own.json()["results"]] == [None, "invalid_string", None]
    assert await _stored(store) == 4


async def test_seed_001_and_003_refuse_a_nul_and_a_nul_device_id(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    await make_device(tenant, id="raspberry-nul", password="password123")

    def message(dev_id: str, value) -> dict:
        return {
            "bizCode": "devicePropertyMessage",
            "ts": 1732631573782,
            "bizData": {"devId": dev_id, "properties": [{"code": "instant_power", "dpId": 1, "value": value}]},
        }

    for doc in (message("meter\x00one", 2500), message("meter-one", "a\x00b"), message("meter-one", {"x": "\x00"})):
        answer = await client.post("/message", json=doc, headers=tenant["headers"])
        assert 400 <= answer.status_code < 500 and answer.json()["code"], answer.text
    assert (await store.list_devices(DeviceFilter()))[1] == 1  # no device registered at first sight
    login = await client.post("/auth/login", json={"device_id": "raspberry-nul\x00", "password": "password123"})
    assert login.status_code == 422 and login.json()["code"] == "invalid_string"  # as every body with a NUL
    token = (await client.post("/auth/login", json={"device_id": "raspberry-nul", "password": "password123"})).json()
    sensor = {
        "machine_id": 1,
        "timestamp": "2026-01-01T00:00:00Z",
        "acceleration_x": 1.2,
        "acceleration_y": 0.5,
        "acceleration_z": -9.81,
        "repetitions": 10,
        "series_time": 30.5,
        "rest_time": 60.0,
    }
    answer = await client.post("/data", json={**sensor, "note": "\x00"}, headers={"token": token["token"]})
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_string"
    assert await _stored(store) == 0


async def test_a_device_id_with_a_nul_is_an_unknown_device_on_every_route(client, store, make_tenant) -> None:
    tenant = await make_tenant()
    admin = {"X-API-Key": TEST_ADMIN_KEY}
    for method, path, headers, body in [
        ("GET", "/api/v1/devices/a%00b", tenant["headers"], None),
        ("GET", "/api/v1/devices/a%00b/latest", tenant["headers"], None),
        ("POST", "/api/v1/devices/a%00b/telemetry", tenant["headers"], {"data": {"t": 1}}),
        ("GET", "/api/v1/devices/a%00b/commands", tenant["headers"], None),
        ("GET", "/iot_objects/a%00b", tenant["headers"], None),
        ("DELETE", "/api/unregister-device/a%00b", tenant["headers"], None),
        ("POST", "/api/register-device", tenant["headers"], {"deviceId": "a\x00b"}),
        ("GET", "/api/v1/admin/devices/a%00b", admin, None),
        ("POST", "/send", tenant["headers"], {"device_id": "a\x00b", "switch": True}),
    ]:
        answer = await client.request(method, path, headers=headers, json=body)
        assert answer.status_code in (404, 422), (path, answer.status_code, answer.text)
        assert answer.json()["code"], answer.text


async def test_a_nul_in_any_query_parameter_is_refused(client, app, make_tenant, make_device) -> None:
    """Filters (`type`, `status`, `search`, `key`, ...) reached PostgreSQL with the NUL: 500."""
    tenant = await make_tenant()
    device = await make_device(tenant, id="queried")
    failures = []
    for path, operations in app.openapi()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "queried", path)
        headers = {"X-API-Key": TEST_ADMIN_KEY} if path.startswith("/api/v1/admin") else tenant["headers"]
        for method, operation in operations.items():
            for parameter in (p["name"] for p in operation.get("parameters", []) if p["in"] == "query"):
                for who in (headers, device["headers"]):
                    answer = await client.request(method.upper(), f"{url}?{parameter}=a%00b", headers=who)
                    if answer.status_code != 422 or answer.json()["code"] != "invalid_string":
                        failures.append((method, path, parameter, answer.status_code))
    assert not failures, failures


async def test_a_number_read_as_zero_and_a_key_collision_are_refused(client, store, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    await make_device(tenant, id="numbers")
    for body, code in [
        (b'{"data": {"t": 1e-400}}', "number_out_of_range"),
        (b'{"data": {"t": 1}, "metadata": {"m": -5E-0324000}}', "number_out_of_range"),
        (b'{"data": {"a": {"b": 1}, "a.b": 2}}', "key_collision"),
    ]:
        answer = await client.post(
            "/api/v1/devices/numbers/telemetry", content=body, headers={**tenant["headers"], **JSON}
        )
        assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    assert "'a.b'" in answer.json()["message"]
    assert await _stored(store) == 0


async def test_huge_numbers_are_stored_as_doubles_on_both_backends(client, store, make_tenant, make_device) -> None:
    """10**30 anywhere is kept as the double 1e30 (as orjson reads it); a body the standard parser reads (here
    UTF-16) read it as a Python int that orjson could not write: the store failed the batch."""
    tenant = await make_tenant()
    await make_device(tenant, id="huge")
    big = "1" + "0" * 30
    body = f'{{"data": {{"t": {big}, "j": {{"x": [{big}]}}}}, "metadata": {{"m": {big}, "u": 18446744073709551615}}}}'
    for encoding in ("utf-8", "utf-16"):
        answer = await client.post(
            "/api/v1/devices/huge/telemetry", content=body.encode(encoding), headers={**tenant["headers"], **JSON}
        )
        assert answer.status_code == 201, answer.text
    messages, total = await store.list_messages(limit=2)
    assert total == 2
    for message in messages:
        assert message.data == {"t": 1e30, "j": {"x": [1e30]}} and message.metadata == {"m": 1e30, "u": 2**64 - 1}
    latest = (await client.get("/api/v1/devices/huge/latest", headers=tenant["headers"])).json()["latest"]
    assert (latest["t"]["value"], latest["j.x.0"]["value"]) == (1e30, 1e30)
    answer = await client.post(
        "/api/v1/devices/huge/telemetry",
        content=f'{{"data": {{"t": 1}}, "timestamp": {big}}}',
        headers={**tenant["headers"], **JSON},
    )
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_timestamp"

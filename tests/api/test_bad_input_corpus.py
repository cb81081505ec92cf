"""A corpus of bad input (malformed JSON, huge numbers, NaN, deep nesting, odd unicode, wrong types,
SQL-looking strings, what a database cannot hold: NUL characters, numbers that read as 0, two values for one
key, a device id with a NUL) sent to every ingest route: always a 4xx JSON error, and nothing stored."""

from __future__ import annotations

import pytest

from telemetra.store import DeviceFilter
from tests.api.test_seed003 import SENSOR_DATA

DEEP = b"[" * 40 + b"1" + b"]" * 40
# Whole bodies that are no message at all.
RAW_BODIES = [
    b"not json",
    b"",
    b"{",
    b'{"data": {"t": 1}',
    b"\xff\xfe{}",
    b"\xc3\x28",
    b"null",
    b"true",
    b"42",
    b"[1, 2]",
    b'"\'; DROP TABLE points; --"',
    b"NaN",
    b"1e999",
    b"{}" * 2,
    DEEP,
    b'{"data": ' * 50 + b"1" + b"}" * 50,
]
# Values where a number is expected.
BAD_NUMBERS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e999",
    b"1" + b"0" * 400,
    DEEP,
    b'"' + b"x" * 5000 + b'"',
]
# Values where a time is expected.
BAD_TIMES = [
    b'"yesterday"',
    b'"2026-01-01\'; DROP TABLE points; --"',
    b"\"' OR '1'='1\"",
    b'"1; DELETE FROM devices"',
    b'"2026-01-01T00:00:00\\u0000Z"',
    b'"\\ud800"',
    b'"\xf0\x9f\x95\x90"',
    b'"\xe2\x80\xae2026-01-01"',
    b"true",
    b"[2026]",
    b'{"year": 2026}',
    b"NaN",
    b"1e999",
    b"1e30",
    b"-1",
    b"1" + b"0" * 40,
    DEEP,
    b'"1999-12-31T23:59:59Z"',
    b'"2999-01-01T00:00:00Z"',
]
# Values a database cannot hold as sent, where any JSON value goes.
POISON_VALUES = [
    b'"a\\u0000b"',
    b'"\\u0000"',
    b'{"x": "a\\u0000"}',
    b'["ok", "\\u0000"]',
    b'{"k\\u0000": 1}',
    b'{"k\\u0000": null}',
    b'{"k": {"\\u0000": []}}',
    b"1e-400",
    b"-2.5E-0400",
    b"[0." + b"0" * 330 + b"1]",
]
# Where the slot's key is "s" with "s.b" beside it: a nested {"b": ...} would give "s.b" twice.
COLLIDING = b'{"b": 1}'
NEW_DEVICE = "corpus-new-device"
# A device id no device can have: its NUL fails a PostgreSQL query if it is ever looked up.
NUL_ID = b"corpus\\u0000device"


def _sensor(slot: str) -> bytes:
    body = b"{" + b", ".join(
        f'"{k}": {v if not isinstance(v, str) else repr(v).replace(chr(39), chr(34))}'.encode()
        for k, v in SENSOR_DATA.items()
        if k != slot
    )
    return body + f', "{slot}": @}}'.encode()


def _property(value: bytes, time: bytes, *, device: bytes = NEW_DEVICE.encode()) -> bytes:
    return (
        b'{"bizCode": "devicePropertyMessage", "ts": 1732631573782, "bizData": {"devId": "'
        + device
        + b'", "properties": [{"code": "instant_power", "dpId": 1, "time": '
        + time
        + b', "value": '
        + value
        + b"}]}}"
    )


# route name: (path, who calls, template with the bad value where a number goes, template for a time)
ROUTES = {
    "device telemetry": (
        "/api/v1/devices/telemetry",
        "device",
        b'{"data": {"t": @}}',
        b'{"data": {"t": 1}, "timestamp": @}',
    ),
    "gateway telemetry": (
        "/api/v1/devices/{id}/telemetry",
        "tenant",
        b'{"data": {"t": @}}',
        b'{"ts": @, "values": {"t": 1}}',
    ),
    "tenant batch": (
        "/api/v1/telemetry/batch",
        "tenant",
        b'{"messages": [{"device_id": "{id}", "data": {"t": @}}]}',
        b'{"messages": [{"device_id": "{id}", "data": {"t": 1}, "timestamp": @}]}',
    ),
    "device batch": (
        "/api/v1/devices/telemetry/batch",
        "device",
        b'[{"data": {"t": @}}]',
        b'[{"t": 1, "timestamp": @}]',
    ),
    "seed 001 message": ("/message", "tenant", _property(b"@", b"1732631573782"), _property(b"2500", b"@")),
    "seed 003 data": ("/data", "token", _sensor("acceleration_x"), _sensor("timestamp")),
}


# route name: a template with "@" where any value goes (see POISON_VALUES; seed 001 keeps two property codes
# only, so no key can collide there), and one that names the device
# NUL_ID (a path and a body; None where the caller's credentials name the device).
VALUE_SLOTS = {
    "device telemetry": b'{"data": {"t": 1, "s.b": 2, "s": @}}',
    "gateway telemetry": b'{"data": {"t": 1, "s.b": 2, "s": @}}',
    "tenant batch": b'{"messages": [{"device_id": "{id}", "data": {"t": 1, "s.b": 2, "s": @}}]}',
    "device batch": b'[{"t": 1, "s.b": 2, "s": @}]',
    "seed 001 message": _property(b"@", b"1732631573782"),
    "seed 003 data": _sensor("s").replace(b'"s": @', b'"s.b": 2, "s": @'),
}
NUL_ID_BODIES = {
    "gateway telemetry": ("/api/v1/devices/corpus%00device/telemetry", b'{"data": {"t": 1}}'),
    "tenant batch": (None, b'{"messages": [{"device_id": "' + NUL_ID + b'", "data": {"t": 1}}]}'),
    "seed 001 message": (None, _property(b"2500", b"1732631573782", device=NUL_ID)),
}


async def _caller(client, make_tenant, make_device) -> tuple[dict, dict]:
    tenant = await make_tenant()
    device = await make_device(tenant, id="corpus-device", password="corpus-password")
    token = (
        await client.post("/auth/login", json={"device_id": "corpus-device", "password": "corpus-password"})
    ).json()["token"]
    return {"tenant": tenant["headers"], "device": device["headers"], "token": {"token": token}}, tenant


@pytest.mark.parametrize("route", list(ROUTES))
async def test_every_bad_input_is_refused_and_nothing_stored(
    client, store, make_tenant, make_device, route: str
) -> None:
    headers, tenant = await _caller(client, make_tenant, make_device)
    path, who, number_slot, time_slot = ROUTES[route]
    path = path.replace("{id}", "corpus-device")
    bodies = (
        [(b"raw", raw) for raw in RAW_BODIES]
        + [(b"number", number_slot.replace(b"{id}", b"corpus-device").replace(b"@", bad)) for bad in BAD_NUMBERS]
        + [(b"time", time_slot.replace(b"{id}", b"corpus-device").replace(b"@", bad)) for bad in BAD_TIMES]
        + [
            (b"value", VALUE_SLOTS[route].replace(b"{id}", b"corpus-device").replace(b"@", bad))
            for bad in POISON_VALUES + ([COLLIDING] if b'"s.b"' in VALUE_SLOTS[route] else [])
        ]
    )
    sends = [(path, what, body) for what, body in bodies]
    if route in NUL_ID_BODIES:
        nul_path, body = NUL_ID_BODIES[route]
        sends.append((nul_path or path, b"device id", body))

    wrong = []
    for to, what, body in sends:
        answer = await client.post(to, content=body, headers={**headers[who], "Content-Type": "application/json"})
        error = answer.json() if answer.headers.get("content-type") == "application/json" else {}
        if not (400 <= answer.status_code < 500 and {"error", "code", "message"} <= set(error)):
            wrong.append((what, body[:120], answer.status_code, answer.text[:200]))
    assert not wrong, wrong

    assert (await store.list_messages(limit=1))[1] == 0
    assert await store.get_device(NEW_DEVICE) is None
    assert (await store.list_devices(DeviceFilter()))[1] == 1  # the caller's device alone
    device = await store.get_device("corpus-device")
    assert await store.latest_values(device.pk) == {}
    # The tables are all there and the server keeps serving.
    good = (number_slot if route != "seed 003 data" else time_slot).replace(b"{id}", b"corpus-device")
    good = good.replace(b"@", b'"2026-01-01T00:00:00Z"' if route == "seed 003 data" else b"21.5")
    answer = await client.post(path, content=good, headers={**headers[who], "Content-Type": "application/json"})
    assert answer.status_code in (200, 201), answer.text
    assert (await client.get("/api/v1/devices", headers=tenant["headers"])).status_code == 200


# -- queries: wide ranges and a budget run out ------------------------------------------------------------
# Ranges no query answers: each names more than TELEMETRA_QUERY_MAX_RANGE_DAYS, in the forms a client may use.
WIDE_RANGES = [
    {"start": "2000-01-01", "end": "2100-01-01"},
    {"start": "1900-01-01", "end": "9999-01-01"},
    {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"},
    {"start": "946684800", "end": "4102444800"},
    {"start": "2024-01-01", "end": "2025-01-02T00:00:00.000001Z"},  # a day and a microsecond over 366 days
    {"start": "1970-01-01"},  # from the epoch to now
]
# Other ranges a query refuses: reversed, empty, unreadable.
BAD_RANGES = [
    {"start": "2026-02-01", "end": "2026-01-01"},
    {"start": "2026-01-01", "end": "2026-01-01"},
    {"start": "2026-01-01'; DROP TABLE points; --"},
    {"end": "99999-01-01"},
    {"start": "NaN"},
    {"start": "1e999"},
    {"start": "2026-01-01T00:00:00\u0000Z"},
    {"tz": "Mars/Olympus_Mons"},
    {"tz": "../../etc/passwd"},
]


def _query_routes() -> list[tuple[str, dict[str, str]]]:
    from tests.api.test_query_bounds import DEVICE_ID, query_routes

    return [(path, params) for path, params in query_routes(DEVICE_ID).values()]


async def test_every_query_route_refuses_wide_and_bad_ranges(client, make_tenant, make_device) -> None:
    from tests.api.test_query_bounds import DEVICE_ID

    tenant = await make_tenant()
    await make_device(tenant, id=DEVICE_ID, device_type="temperature_sensor")
    wrong = []
    for path, params in _query_routes():
        for bad in WIDE_RANGES + BAD_RANGES:
            answer = await client.get(path, headers=tenant["headers"], params={**params, **bad})
            error = answer.json() if answer.headers.get("content-type") == "application/json" else {}
            wide = bad in WIDE_RANGES
            if not (
                answer.status_code == 422
                and {"error", "code", "message"} <= set(error)
                and (error["code"] == "range_too_large") == wide
            ):
                wrong.append((path, bad, answer.status_code, answer.text[:200]))
    assert not wrong, wrong
    assert (await client.get("/api/v1/devices", headers=tenant["headers"])).status_code == 200


async def test_every_query_route_answers_query_timeout_past_its_budget(app, client, make_tenant, make_device) -> None:
    """A budget too small for any read: each query is stopped with a JSON 503 that says to retry (the real
    slow queries are in test_query_bounds.py), and the server then answers the same queries."""
    from tests.api.test_query_bounds import DEVICE_ID

    tenant = await make_tenant()
    await make_device(tenant, id=DEVICE_ID, device_type="temperature_sensor")
    settings = app.state.services.settings
    settings.query_timeout_s = 1e-9
    wrong = []
    for path, params in _query_routes():
        answer = await client.get(path, headers=tenant["headers"], params=params)
        error = answer.json() if answer.headers.get("content-type") == "application/json" else {}
        if not (answer.status_code == 503 and error.get("code") == "query_timeout" and "Retry-After" in answer.headers):
            wrong.append((path, answer.status_code, answer.text[:200]))
    assert not wrong, wrong
    settings.query_timeout_s = 10
    for path, params in _query_routes():
        assert (await client.get(path, headers=tenant["headers"], params=params)).status_code == 200, path

"""Bad input gets a clear JSON error and a 4xx, nothing of it is stored, and the server keeps serving."""

from __future__ import annotations

import json

import pytest

DEEP = {"data": {"v": json.loads("[" * 12 + "1" + "]" * 12)}}


def _body(doc) -> bytes:
    return json.dumps(doc).encode()


BAD_TELEMETRY = [
    # (raw body, content type, status, code)
    (b"not json", "application/json", 400, "invalid_json"),
    (b'{"data": {"t": 1}', "application/json", 400, "invalid_json"),
    (b"", "application/json", 400, "invalid_json"),
    (b'\xff\xfe{"data"}', "application/json", 400, "invalid_json"),
    (_body({"data": {"t": 1}}), "text/plain", 415, "unsupported_media_type"),
    (_body({"data": {"t": 1}}), "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (b'{"data": {"t": NaN}}', "application/json", 422, "invalid_number"),
    (b'{"data": {"t": Infinity}}', "application/json", 422, "invalid_number"),
    (b'{"data": {"t": -Infinity}}', "application/json", 422, "invalid_number"),
    (b'{"data": {"t": 1e999}}', "application/json", 422, "invalid_number"),
    (b'{"data": {"t": 1' + b"0" * 400 + b"}}", "application/json", 422, "invalid_number"),
    (_body([1, 2, 3]), "application/json", 422, "validation_error"),
    (_body({"metadata": {}}), "application/json", 422, "invalid_data"),
    (_body({"data": {}}), "application/json", 422, "invalid_data"),
    (_body({"data": "22.5"}), "application/json", 422, "invalid_data"),
    (_body({"data": [1, 2]}), "application/json", 422, "invalid_data"),
    (_body({"data": {"t": 1}, "metadata": "x"}), "application/json", 422, "invalid_metadata"),
    (_body({"data": {"t": 1}, "type": 5}), "application/json", 422, "invalid_type"),
    (_body({"data": {"t": 1}, "type": "x" * 65}), "application/json", 422, "invalid_type"),
    (_body({"data": {f"k{i}": i for i in range(257)}}), "application/json", 422, "too_many_keys"),
    (_body({"data": {"k" * 129: 1}}), "application/json", 422, "invalid_key"),
    (_body({"data": {"": 1}}), "application/json", 422, "invalid_key"),
    (_body({"data": {"a\nb": 1}}), "application/json", 422, "invalid_key"),
    (_body({"data": {"t": "x" * 5000}}), "application/json", 422, "value_too_long"),
    (_body({"data": {"t": 1e200}}), "application/json", 422, "number_out_of_range"),
    (_body({"data": {"t": {"deep": -1e101}}}), "application/json", 422, "number_out_of_range"),
    (_body({"data": {"t": 1e-200}}), "application/json", 422, "number_out_of_range"),
    (_body(DEEP), "application/json", 422, "too_deep"),
    (_body({"data": {"t": 1}, "timestamp": "yesterday"}), "application/json", 422, "invalid_timestamp"),
    (_body({"data": {"t": 1}, "timestamp": "1999-12-31T23:59:59Z"}), "application/json", 422, "invalid_timestamp"),
    (_body({"data": {"t": 1}, "timestamp": "2999-01-01T00:00:00Z"}), "application/json", 422, "invalid_timestamp"),
    (_body({"data": {"t": 1}, "timestamp": 1e30}), "application/json", 422, "invalid_timestamp"),
    (_body({"data": {"t": 1}, "timestamp": True}), "application/json", 422, "invalid_timestamp"),
    (_body({"data": {"t": 1}, "timestamp": [2026]}), "application/json", 422, "invalid_timestamp"),
]


async def _stored(client, admin_headers) -> tuple[int, int]:
    stats = (await client.get("/api/v1/admin/dashboard", headers=admin_headers)).json()["statistics"]
    return stats["telemetry"]["total_records"], stats["telemetry"]["points_today"]


@pytest.mark.parametrize(
    "raw, content_type, status, code", BAD_TELEMETRY, ids=[f"{i}-{case[3]}" for i, case in enumerate(BAD_TELEMETRY)]
)
async def test_bad_telemetry_is_refused_and_nothing_stored(
    client, make_tenant, make_device, admin_headers, raw, content_type, status, code
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    for path, headers in (
        ("/api/v1/devices/telemetry", device["headers"]),
        (f"/api/v1/devices/{device['id']}/telemetry", tenant["headers"]),
    ):
        resp = await client.post(path, headers={**headers, "Content-Type": content_type}, content=raw)
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["code"] == code and body["message"] and set(body) >= {"error", "code", "message"}
    assert await _stored(client, admin_headers) == (0, 0)
    latest = (await client.get(f"/api/v1/devices/{device['id']}/latest", headers=tenant["headers"])).json()
    assert latest["latest"] == {}
    # The server keeps serving.
    ok = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
    assert ok.status_code == 201
    assert await _stored(client, admin_headers) == (1, 1)


async def test_body_over_limit_is_413(client, app, make_tenant, make_device, admin_headers) -> None:
    device = await make_device(await make_tenant())
    limit = app.state.services.settings.max_body_bytes
    big = _body({"data": {"blob": "x" * 4000, "n": 1}, "metadata": {f"m{i}": "y" * 4000 for i in range(limit // 4000)}})
    resp = await client.post(
        "/api/v1/devices/telemetry", content=big, headers={**device["headers"], "Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: the limit holds on the stream too
        for _ in range(limit // 1000 + 2):
            yield b" " * 1000

    resp = await client.post(
        "/api/v1/devices/telemetry", content=chunks(), headers={**device["headers"], "Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert await _stored(client, admin_headers) == (0, 0)


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/api/v1/admin/tenants", {"name": ""}, 422),
        ("/api/v1/admin/tenants", {"name": 5}, 422),
        ("/api/v1/admin/tenants", {"nom": "x"}, 422),
        ("/api/v1/admin/tenants", {"name": "a", "extra": 1}, 422),
        ("/api/v1/admin/tenants", {"name": "x" * 101}, 422),
    ],
)
async def test_bad_admin_bodies(client, admin_headers, path, body, status) -> None:
    resp = await client.post(path, headers=admin_headers, json=body)
    assert resp.status_code == status and resp.json()["error"] == "Unprocessable Entity"
    assert resp.json()["details"]
    assert (await client.get("/api/v1/admin/tenants", headers=admin_headers)).json()["tenants"] == []


async def test_bad_key_bodies(client, admin_headers, make_tenant) -> None:
    tenant = await make_tenant()
    url = f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys"
    for body in ({"scope": "root"}, {"expires_at": "soon"}, {"name": 3}):
        resp = await client.post(url, headers=admin_headers, json=body)
        assert resp.status_code == 422, body
    keys = (await client.get(url, headers=admin_headers)).json()["keys"]
    assert len(keys) == 1


@pytest.mark.parametrize(
    "body", [{"name": ""}, {"name": None}, {}, {"name": "x" * 101}, {"name": "ok", "device_type": ""}]
)
async def test_bad_registration_stores_nothing(client, make_tenant, body) -> None:
    tenant = await make_tenant()
    resp = await client.post("/api/v1/devices/register", headers=tenant["headers"], json=body)
    assert resp.status_code == 422
    assert (await client.get("/api/v1/devices", headers=tenant["headers"])).json()["devices"] == []


async def test_unknown_route_and_method_are_json(client) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    resp = await client.delete("/health")
    assert resp.status_code == 405 and resp.json()["code"] == "method_not_allowed"


async def test_oversized_key_header_is_401(client) -> None:
    resp = await client.get("/api/v1/devices", headers={"X-API-Key": "k" * 5000})
    assert resp.status_code == 401 and resp.json()["code"] == "invalid_api_key"

"""The ingest routes take only the Request and skip FastAPI's per-request machinery: they must still refuse
and answer exactly as every other route does, and be documented as before."""

from __future__ import annotations

import pytest

from telemetra.api.direct_route import DirectRoute
from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY

DEVICE_ROUTE, OWN_BATCH, TENANT_BATCH = (
    "/api/v1/devices/telemetry",
    "/api/v1/devices/telemetry/batch",
    "/api/v1/telemetry/batch",
)
INGEST_ROUTES = (DEVICE_ROUTE, OWN_BATCH, TENANT_BATCH)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        rate_limit_device_telemetry="2/minute",
        rate_limit_batch="2/minute",
        max_body_bytes=2000,
    )


def _assert_json_error(answer, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == code and body["error"] and body["message"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.fixture
async def keys(make_tenant, make_device, client) -> dict[str, dict[str, str]]:
    tenant = await make_tenant()
    device = await make_device(tenant)
    ingest = (await client.post("/api/v1/keys", headers=tenant["headers"], json={"scope": "ingest"})).json()
    return {
        "tenant": tenant["headers"],
        "device": device["headers"],
        "device_id": device["id"],
        "ingest": {"X-API-Key": ingest["api_key"]},
    }


@pytest.mark.parametrize("path", INGEST_ROUTES)
async def test_a_missing_or_unknown_key_is_401(client, path) -> None:
    _assert_json_error(await client.post(path, json={"data": {"t": 1}}), 401, "missing_api_key")
    _assert_json_error(
        await client.post(path, json={"data": {"t": 1}}, headers={"X-API-Key": "tlmd_nobody"}), 401, "invalid_api_key"
    )


async def test_a_key_of_the_wrong_kind_is_403(client, keys) -> None:
    for path, headers in ((DEVICE_ROUTE, keys["tenant"]), (OWN_BATCH, keys["ingest"]), (TENANT_BATCH, keys["device"])):
        _assert_json_error(await client.post(path, json=[{"data": {"t": 1}}], headers=headers), 403, "wrong_key_kind")
    # A gateway's key of scope ingest may send batches.
    sent = await client.post(
        TENANT_BATCH, headers=keys["ingest"], json=[{"device_id": keys["device_id"], "data": {"t": 1}}]
    )
    assert sent.status_code == 200 and sent.json()["accepted"] == 1


@pytest.mark.parametrize("path", INGEST_ROUTES)
async def test_bodies_are_refused_as_on_every_route(client, keys, path) -> None:
    headers = keys["tenant"] if path == TENANT_BATCH else keys["device"]
    _assert_json_error(
        await client.post(path, content=b"t=1", headers={**headers, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    _assert_json_error(
        await client.post(path, content=b"{not json", headers={**headers, "Content-Type": "application/json"}),
        400,
        "invalid_json",
    )


async def test_too_large_and_invalid_messages(client, keys) -> None:
    _assert_json_error(
        await client.post(DEVICE_ROUTE, headers=keys["device"], json={"data": {"x": "y" * 3000}}),
        413,
        "payload_too_large",
    )
    _assert_json_error(await client.post(DEVICE_ROUTE, headers=keys["device"], json={"data": {}}), 422, "invalid_data")
    _assert_json_error(
        await client.post(OWN_BATCH, headers=keys["device"], json={"messages": []}), 422, "invalid_batch"
    )


async def test_answers_carry_the_rate_limit_and_429_past_it(client, keys) -> None:
    answers = [await client.post(DEVICE_ROUTE, headers=keys["device"], json={"data": {"t": i}}) for i in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[0].json()["telemetry_id"] and answers[0].json()["duplicate"] is False
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "2" and answers[0].headers["X-Frame-Options"] == "DENY"
    _assert_json_error(answers[2], 429, "rate_limited")
    assert int(answers[2].headers["Retry-After"]) >= 1
    batches = [
        await client.post(
            TENANT_BATCH, headers=keys["tenant"], json=[{"device_id": keys["device_id"], "data": {"t": i}}]
        )
        for i in range(3)
    ]
    assert [b.status_code for b in batches] == [200, 200, 429]


async def test_metrics_name_the_route_template(client, keys) -> None:
    await client.post(DEVICE_ROUTE, headers=keys["device"], json={"data": {"t": 1}})
    await client.post(TENANT_BATCH, json=[])
    metrics = (await client.get("/metrics")).text
    assert 'telemetra_http_requests_total{method="POST",route="/api/v1/devices/telemetry",status="201"}' in metrics
    assert 'telemetra_http_requests_total{method="POST",route="/api/v1/telemetry/batch",status="401"}' in metrics


async def test_they_are_matched_first_and_documented_like_the_other_routes(app, client) -> None:
    # The app's first routes: a request tries them before any other.
    assert [(r.path, type(r)) for r in app.router.routes[:3]] == [(p, DirectRoute) for p in INGEST_ROUTES]
    schema = (await client.get("/openapi.json")).json()
    for path in INGEST_ROUTES:
        operation = schema["paths"][path]["post"]
        assert operation["security"] == [{"APIKeyHeader": []}]
        assert operation["requestBody"]["required"] is True
        assert {"401", "403", "413", "415", "422", "429", "503"} <= set(operation["responses"])
    assert "201" in schema["paths"][DEVICE_ROUTE]["post"]["responses"]
    assert "207" in schema["paths"][TENANT_BATCH]["post"]["responses"]
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    # The same path's other method still reaches its own route, and the docs are still served.
    assert (await client.get(DEVICE_ROUTE)).json()["code"] == "missing_api_key"
    assert (await client.get("/docs")).status_code == 200 and (await client.get("/redoc")).status_code == 200

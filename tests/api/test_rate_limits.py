"""Rate limits per device, per tenant and for batches: 429 with Retry-After and RateLimit-*, nothing stored."""

from __future__ import annotations

import logging

import pytest

from telemetra.settings import Settings
from tests.brokers import free_port
from tests.conftest import TEST_ADMIN_KEY


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Small budgets, so that a test reaches them in a few requests.
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        rate_limit_device="3/minute",
        rate_limit_device_telemetry="5/minute",
        rate_limit_tenant="20/minute",
        rate_limit_batch="2/minute",
    )


def _telemetry(i: int) -> dict:
    return {"data": {"t": i}, "timestamp": f"2026-01-01T00:00:{i:02d}Z"}


async def test_a_device_past_its_telemetry_budget_gets_429_and_nothing_is_stored(
    client, store, make_tenant, make_device
) -> None:
    device = await make_device(await make_tenant())
    answers = [
        await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=_telemetry(i)) for i in range(6)
    ]

    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "5"
    refused = answers[-1]
    assert refused.json()["error"] == "Too Many Requests" and refused.json()["code"] == "rate_limited"
    assert "'device_telemetry' of 5 per minute" in refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await store.list_messages(limit=1))[1] == 5
    # Its other routes have their own budget, and so has a replay of its buffer.
    assert (await client.get("/api/v1/devices/status", headers=device["headers"])).status_code == 200
    replay = await client.post(
        "/api/v1/devices/telemetry/batch", headers=device["headers"], json=[_telemetry(i) for i in range(10, 40)]
    )
    assert replay.status_code == 200 and replay.json()["accepted"] == 30


async def test_other_devices_and_tenants_keep_their_budgets(client, make_tenant, make_device) -> None:
    tenant, other_tenant = await make_tenant(), await make_tenant()
    first, second = await make_device(tenant), await make_device(tenant)
    for _ in range(3):
        await client.get("/api/v1/devices/status", headers=first["headers"])

    assert (await client.get("/api/v1/devices/status", headers=first["headers"])).status_code == 429
    assert (await client.get("/api/v1/devices/status", headers=second["headers"])).status_code == 200
    assert (await client.get("/api/v1/devices", headers=other_tenant["headers"])).status_code == 200


async def test_a_tenants_keys_share_its_budget_and_admin_routes_are_not_limited(
    client, admin_headers, make_tenant
) -> None:
    tenant = await make_tenant()
    second_key = (
        await client.post(
            f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys", headers=admin_headers, json={"name": "second"}
        )
    ).json()["api_key"]
    answers = [
        await client.get("/api/v1/devices", headers=tenant["headers"] if i % 2 else {"X-API-Key": second_key})
        for i in range(21)
    ]

    assert [a.status_code for a in answers].count(200) == 20 and answers[-1].status_code == 429
    assert "'tenant' of 20 per minute" in answers[-1].json()["message"]
    for _ in range(25):
        assert (await client.get("/api/v1/admin/tenants", headers=admin_headers)).status_code == 200


async def test_limits_set_for_a_tenant_and_a_device(client, admin_headers, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    loud, quiet = await make_device(tenant), await make_device(tenant)
    tid = tenant["tenant"]["id"]

    bad = await client.put(
        f"/api/v1/admin/tenants/{tid}/rate-limits", headers=admin_headers, json={"device_telemetry": "lots"}
    )
    set_tenant = await client.put(
        f"/api/v1/admin/tenants/{tid}/rate-limits", headers=admin_headers, json={"device_telemetry": "2/minute"}
    )
    set_device = await client.put(
        f"/api/v1/admin/devices/{loud['id']}/rate-limits", headers=admin_headers, json={"device_telemetry": "8/minute"}
    )

    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert set_tenant.json()["effective"]["device_telemetry"] == "2 per 1 minute"
    assert set_device.json()["overrides"] == {"device_telemetry": "8/minute"}
    loud_codes = [
        (await client.post("/api/v1/devices/telemetry", headers=loud["headers"], json=_telemetry(i))).status_code
        for i in range(9)
    ]
    quiet_codes = [
        (await client.post("/api/v1/devices/telemetry", headers=quiet["headers"], json=_telemetry(i))).status_code
        for i in range(3)
    ]
    assert loud_codes == [201] * 8 + [429]
    assert quiet_codes == [201, 201, 429]
    shown = (await client.get(f"/api/v1/admin/devices/{quiet['id']}/rate-limits", headers=admin_headers)).json()
    assert shown["overrides"] == {} and shown["effective"]["device_telemetry"] == "2 per 1 minute"


async def test_refusals_are_counted_on_metrics_by_limit(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    for _ in range(4):
        await client.get("/api/v1/devices/status", headers=device["headers"])

    metrics = (await client.get("/metrics")).text

    line = next(m for m in metrics.splitlines() if m.startswith('telemetra_rate_limited_total{limit="device"}'))
    assert float(line.split()[-1]) >= 1


async def test_an_unreachable_redis_lets_requests_through_and_says_so(database_url, store, caplog) -> None:
    import httpx

    from telemetra.api.app import create_app

    caplog.set_level(logging.WARNING)
    settings = Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        rate_limit_tenant="1/minute",
    )
    application = create_app(settings, store)
    async with application.router.lifespan_context(application):
        await application.state.services.keys.ensure_admin_key(TEST_ADMIN_KEY)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as client:
            tenant = await client.post(
                "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "acme"}
            )
            headers = {"X-API-Key": tenant.json()["api_key"]}
            codes = [(await client.get("/api/v1/devices", headers=headers)).status_code for _ in range(3)]

    assert codes == [200, 200, 200]
    assert "rate-limit storage unavailable" in caplog.text


def test_each_route_counts_against_one_budget() -> None:
    from telemetra.ratelimit.policy import limit_name

    assert limit_name("device", "POST", "/api/v1/devices/telemetry") == "device_telemetry"
    assert limit_name("device", "POST", "/data") == "device_telemetry"
    assert limit_name("device", "GET", "/api/v1/devices/telemetry") == "device"
    assert limit_name("device", "POST", "/api/v1/devices/telemetry/batch") == "batch"
    assert limit_name("tenant", "POST", "/api/v1/telemetry/batch") == "batch"
    assert limit_name("tenant", "POST", "/message") == "tenant"  # a vendor cloud's stream, message by message
    assert limit_name("tenant", "POST", "/api/v1/devices/{device_id}/telemetry") == "tenant"
    assert limit_name("admin", "GET", "/api/v1/admin/tenants") is None


async def test_a_token_and_a_key_of_one_device_share_its_budget(client, make_tenant, make_device) -> None:
    from tests.api.test_seed003 import SENSOR_DATA

    device = await make_device(await make_tenant(), id="pi-budget", password="budget-password")
    token = (await client.post("/auth/login", json={"device_id": "pi-budget", "password": "budget-password"})).json()[
        "token"
    ]
    by_token = [
        (
            await client.post(
                "/data", headers={"token": token}, json={**SENSOR_DATA, "timestamp": f"2026-01-01T00:00:0{i}Z"}
            )
        ).status_code
        for i in range(3)
    ]
    by_key = [
        (await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=_telemetry(i))).status_code
        for i in range(3)
    ]

    assert by_token == [200, 200, 200] and by_key == [201, 201, 429]  # 5 a minute in all

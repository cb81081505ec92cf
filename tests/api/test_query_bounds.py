"""Every query is bounded: a range wider than allowed is refused before any work, a query past its time
budget is stopped (on the database too), a client that leaves stops its query, and ingest goes on while
heavy queries run.

Slow queries are made slow for real: many raw points read back (both backends), or, on PostgreSQL, a
table the query needs held under an exclusive lock by another connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from telemetra.store import Store, store_from_url
from tests.conftest import TEST_ADMIN_KEY

CENTURY = {"start": "2000-01-01", "end": "2100-01-01"}
ALL_OF_TIME = {"start": "1900-01-01", "end": "9999-01-01"}
DEVICE_ID = "bounded-device"


def query_routes(device_id: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Every route that takes a time range, with the parameters it needs besides the range."""
    return {
        "device stats": (f"/api/v1/devices/{device_id}/stats", {"key": "temperature"}),
        "tenant stats": ("/api/v1/stats", {"key": "temperature"}),
        "energy report": ("/api/v1/reports/energy", {}),
        "energy report list": ("/api/v1/reports/energy", {"format": "list"}),
        "series": (f"/api/v1/devices/{device_id}/telemetry", {"keys": "temperature", "interval": "1d"}),
        "seed 001 report": ("/report", {}),
        "seed 001 power": ("/report/power", {}),
        "seed 001 temperature": ("/report/temperature", {}),
        "seed 000 processed data": ("/processed_data", {"object_id": device_id, "key": "temperature"}),
        "seed 000 client statistics": ("/client_statistics", {"key": "temperature"}),
    }


# Routes whose answer comes from every raw point of the range, and the parameters that make it so.
RAW_ROUTES = {
    "energy report, half-hour zone": ("/api/v1/reports/energy", {"tz": "Asia/Kolkata"}),
    "seed 001 report, half-hour zone": ("/report", {"tz": "Asia/Kolkata"}),
    "seed 001 temperature, half-hour zone": ("/report/temperature", {"tz": "Asia/Kolkata"}),
    "series under an hour": (f"/api/v1/devices/{DEVICE_ID}/telemetry", {"keys": "temperature", "interval": "15m"}),
}


async def _tenant_with_data(client: httpx.AsyncClient, make_tenant, make_device) -> dict:
    tenant = await make_tenant()
    device = await make_device(tenant, id=DEVICE_ID, device_type="temperature_sensor")
    for ts, values in [
        ("2026-01-10T10:00:00Z", {"temperature": 20, "instant_power": 1000, "temp_interior": 19}),
        ("2026-01-10T11:30:00Z", {"temperature": 30, "instant_power": 500, "temp_interior": 21}),
    ]:
        resp = await client.post(
            "/api/v1/devices/telemetry", headers=device["headers"], json={"data": values, "timestamp": ts}
        )
        assert resp.status_code == 201, resp.text
    return tenant


@pytest.mark.parametrize("wide", [CENTURY, ALL_OF_TIME], ids=["2000-2100", "1900-9999"])
async def test_a_range_wider_than_allowed_is_refused_on_every_query_route(
    client, make_tenant, make_device, wide
) -> None:
    tenant = await _tenant_with_data(client, make_tenant, make_device)
    wrong = {}
    for name, (path, params) in query_routes(DEVICE_ID).items():
        resp = await client.get(path, headers=tenant["headers"], params={**params, **wide})
        body = resp.json()
        if not (
            resp.status_code == 422
            and body.get("code") == "range_too_large"
            and body.get("details") == {"max_range_days": 366}
            and "366 days" in body["message"]
        ):
            wrong[name] = (resp.status_code, resp.text[:300])
    assert not wrong, wrong
    # The server keeps serving.
    assert (await client.get("/api/v1/devices", headers=tenant["headers"])).status_code == 200


async def test_a_range_at_the_maximum_is_answered(client, make_tenant, make_device) -> None:
    tenant = await _tenant_with_data(client, make_tenant, make_device)
    year = {"start": "2025-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"}  # 366 days
    wrong = {}
    for name, (path, params) in query_routes(DEVICE_ID).items():
        resp = await client.get(path, headers=tenant["headers"], params={**params, **year})
        if resp.status_code != 200:
            wrong[name] = (resp.status_code, resp.text[:300])
    assert not wrong, wrong
    series = await client.get(
        f"/api/v1/devices/{DEVICE_ID}/telemetry",
        headers=tenant["headers"],
        params={"keys": "temperature", "interval": "1h", "agg": "count", **year},
    )
    assert sum(item["value"] for item in series.json()["telemetry"]["temperature"]) == 2  # both points are in it
    report = await client.get("/report", headers=tenant["headers"], params=year)
    assert report.json()["2026-01-10"]["10:00"] > 0


async def test_answers_from_raw_points_have_a_shorter_maximum(client, make_tenant, make_device) -> None:
    tenant = await _tenant_with_data(client, make_tenant, make_device)
    month = {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}  # 31 days
    longer = {"start": "2025-12-31T00:00:00Z", "end": "2026-02-01T00:00:00Z"}
    wrong = {}
    for name, (path, params) in RAW_ROUTES.items():
        refused = await client.get(path, headers=tenant["headers"], params={**params, **longer})
        if refused.status_code != 422 or refused.json().get("details") != {"max_range_days": 31}:
            wrong[name] = ("32 days", refused.status_code, refused.text[:300])
        answered = await client.get(path, headers=tenant["headers"], params={**params, **month})
        if answered.status_code != 200:
            wrong[name] = ("31 days", answered.status_code, answered.text[:300])
    assert not wrong, wrong


# -- time budget -----------------------------------------------------------------------------------------
async def fill_points(database_url: str, device_pk: int, key: str, start: datetime, count: int, step_s: float) -> None:
    """Store ``count`` raw points of ``key`` directly (no rollups): a large series to read back."""
    first_us = int(start.timestamp() * 1_000_000)
    step_us = int(step_s * 1_000_000)
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            key_id = conn.execute("SELECT id FROM ts_keys WHERE name = ?", (key,)).fetchone()[0]
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT OR IGNORE INTO points (device_pk, key_id, ts, v_num) "
                "SELECT ?, ?, ? + i * ?, i % 100 FROM n",
                (count, device_pk, key_id, first_us, step_us),
            )
            conn.commit()
        finally:
            conn.close()
        return
    conn = await asyncpg.connect(database_url)
    try:
        key_id = await conn.fetchval("SELECT id FROM ts_keys WHERE name = $1", key)
        await conn.execute(
            "INSERT INTO points (device_pk, key_id, ts, v_num) SELECT $1, $2, "
            "$3::timestamptz + i * make_interval(secs => $4), i % 100 "
            "FROM generate_series(1, $5) AS i ON CONFLICT DO NOTHING",
            device_pk,
            key_id,
            start,
            step_s,
            count,
        )
    finally:
        await conn.close()


async def _loaded_device(client, store: Store, database_url: str, make_tenant, make_device) -> tuple[dict, dict]:
    """A device with 600,000 raw points of `load` over the last 30 days (one every 4.3 s)."""
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"load": 1}})
    assert resp.status_code == 201, resp.text
    start = datetime.now(timezone.utc) - timedelta(days=30)
    await fill_points(database_url, (await store.get_device(device["id"])).pk, "load", start, 600_000, 4.32)
    return tenant, device


async def test_a_query_past_its_time_budget_is_stopped(
    app, client, store, database_url, make_tenant, make_device
) -> None:
    tenant, device = await _loaded_device(client, store, database_url, make_tenant, make_device)
    settings = app.state.services.settings
    settings.query_timeout_s, settings.query_max_rows = 0.05, 1_000_000
    # 15-minute buckets come from the raw points: 600,000 of them to read, far more than 50 ms of work.
    params = {
        "keys": "load",
        "interval": "15m",
        "agg": "count",
        "start": (datetime.now(timezone.utc) - timedelta(days=30)).isoformat(),
    }
    resp = await client.get(f"/api/v1/devices/{device['id']}/telemetry", headers=tenant["headers"], params=params)
    assert resp.status_code == 503, resp.text
    assert resp.json()["code"] == "query_timeout" and resp.headers["Retry-After"] == "1"
    # The query connections are free again: a small query within the same budget answers.
    settings.query_timeout_s = 10
    small = await client.get(f"/api/v1/devices/{device['id']}/stats", headers=tenant["headers"], params={"key": "load"})
    assert small.status_code == 200, small.text


async def test_a_query_reading_too_many_rows_is_refused(
    app, client, store, database_url, make_tenant, make_device
) -> None:
    tenant, device = await _loaded_device(client, store, database_url, make_tenant, make_device)
    app.state.services.settings.query_max_rows = 100_000
    params = {
        "keys": "load",
        "interval": "15m",
        "agg": "count",
        "start": (datetime.now(timezone.utc) - timedelta(days=30)).isoformat(),
    }
    resp = await client.get(f"/api/v1/devices/{device['id']}/telemetry", headers=tenant["headers"], params=params)
    assert resp.status_code == 422 and resp.json()["code"] == "too_many_rows", resp.text


# -- PostgreSQL: statements cancelled, ingest's connections untouched ---------------------------------------
@asynccontextmanager
async def _locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Hold ``table`` under an exclusive lock: every query that reads it waits, as long as we like."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def _waiting_on(database_url: str, table: str) -> int:
    """How many statements (of other sessions) reading ``table`` are still running."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE $1",
            f"%FROM {table} %",
        )
    finally:
        await conn.close()


async def _until_none_waiting(database_url: str, table: str) -> int:
    # The cancel request travels on its own connection: give it a moment (at most 5 s) to land.
    for _ in range(50):
        if not await _waiting_on(database_url, table):
            return 0
        await asyncio.sleep(0.1)
    return await _waiting_on(database_url, table)


@asynccontextmanager
async def _serving(
    database_url: str, *, pool_size: int = 10, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, dict]]:
    """An app on its own store (``pool_size`` ingest connections); yields a client and a tenant's headers."""
    store = store_from_url(database_url, pool_size=pool_size)
    await store.open()
    config = Settings(
        database_url=database_url, admin_key=TEST_ADMIN_KEY, _env_file=None, activity_flush_interval_s=3600, **settings
    )
    app = create_app(config, store)
    try:
        async with app.router.lifespan_context(app):
            await app.state.services.keys.ensure_admin_key(TEST_ADMIN_KEY)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
            ) as client:
                made = await client.post(
                    "/api/v1/admin/tenants",
                    headers={"X-API-Key": TEST_ADMIN_KEY},
                    json={"name": f"t-{uuid.uuid4().hex[:8]}"},
                )
                headers = {"X-API-Key": made.json()["api_key"]}
                # A power series, so that the tenant's energy report reads its energy rollup.
                device = (
                    await client.post("/api/v1/devices/register", headers=headers, json={"name": "heater"})
                ).json()["device"]
                resp = await client.post(
                    "/api/v1/devices/telemetry",
                    headers={"X-API-Key": device["api_key"]},
                    json={"data": {"instant_power": 1500}},
                )
                assert resp.status_code == 201, resp.text
                yield client, headers
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_cancels_the_statement_of_a_query_past_its_budget(pg_database) -> None:
    async with _serving(pg_database, query_timeout_s=0.5) as (client, headers):
        async with _locked(pg_database, "tenant_energy_hourly"):
            resp = await asyncio.wait_for(client.get("/report", headers=headers), 30)
            assert resp.status_code == 503 and resp.json()["code"] == "query_timeout", resp.text
            assert await _until_none_waiting(pg_database, "tenant_energy_hourly") == 0


@pytest.mark.postgres
async def test_postgres_ingest_goes_on_while_heavy_queries_wait(pg_database) -> None:
    """Two ingest connections, four reports stuck on a lock: before queries had their own pool, the reports
    held both connections and no message could be stored until they finished."""
    async with asyncio.timeout(120), _serving(pg_database, pool_size=2, query_timeout_s=60) as (client, headers):
        device = (
            await client.post("/api/v1/devices/register", headers=headers, json={"name": "ingest-during-reports"})
        ).json()["device"]
        async with _locked(pg_database, "tenant_energy_hourly"):
            reports = [asyncio.ensure_future(client.get("/report", headers=headers)) for _ in range(4)]
            while await _waiting_on(pg_database, "tenant_energy_hourly") < 3:  # the query pool holds 3
                await asyncio.sleep(0.05)
            sent = await asyncio.wait_for(
                asyncio.gather(
                    *[
                        client.post(
                            "/api/v1/devices/telemetry",
                            headers={"X-API-Key": device["api_key"]},
                            json={"data": {"temperature": i}},
                        )
                        for i in range(50)
                    ]
                ),
                30,
            )
            assert [r.status_code for r in sent] == [201] * 50
            assert not any(r.done() for r in reports)  # still waiting: ingest did not wait for them
        answered = await asyncio.wait_for(asyncio.gather(*reports), 30)
        assert [r.status_code for r in answered] == [200] * 4


@pytest.mark.postgres
async def test_postgres_a_client_that_leaves_stops_its_query(pg_database) -> None:
    async with _serving(pg_database, query_timeout_s=60) as (client, headers):
        app = client._transport.app  # the same app, called as a server would, with a client that leaves
        async with _locked(pg_database, "tenant_energy_hourly"):
            left = asyncio.Event()
            sent: list[dict] = []

            async def receive() -> dict:
                if not sent:
                    sent.append({})
                    return {"type": "http.request", "body": b"", "more_body": False}
                while await _waiting_on(pg_database, "tenant_energy_hourly") < 1:  # the query is running
                    await asyncio.sleep(0.05)
                left.set()
                return {"type": "http.disconnect"}

            async def send(message: dict) -> None:
                pass

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": "/report",
                "raw_path": b"/report",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"host", b"testserver"), (b"x-api-key", headers["X-API-Key"].encode())],
                "client": ("127.0.0.1", 5000),
                "server": ("testserver", 80),
            }
            await asyncio.wait_for(app(scope, receive, send), 30)  # returns though the lock is still held
            assert left.is_set()
            assert await _until_none_waiting(pg_database, "tenant_energy_hourly") == 0

"""Console device-list benchmark (not a test): GET /api/v1/fleet/devices over 100,000 devices of one tenant.

    python bench/console_devices.py [--devices 100000] [--backends sqlite,postgres] [--repeat 15]

For each backend: a `telemetra serve` process on a fresh database (PostgreSQL: a database of its own,
dropped at the end), one tenant created through the API, its devices written straight into the database
(COPY / executemany: registering 100,000 through the API would measure registration), a tenth of them
seen recently, each with three latest values. Then the median (and p90) server answer, timed by the client
on a kept-alive connection, of: the first page, a deep page (a cursor near the end of the list), the first
page with each filter, an id prefix and a name prefix search.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import Server  # noqa: E402  (a serve process on a free port, stopped by its PID)

ADMIN_KEY = "tlma_" + "e" * 43
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TYPES = ("sensor", "meter", "boiler", "gateway")
STATUSES = ("active", "active", "active", "maintenance", "inactive")


def _rows(tenant_id: int, count: int, now: datetime) -> list[tuple]:
    rows = []
    for n in range(count):
        seen = now - timedelta(seconds=30) if n % 10 == 0 else (now - timedelta(days=2) if n % 3 else None)
        rows.append(
            (
                f"dev-{n:06d}",
                tenant_id,
                f"Device {n:06d}",
                TYPES[n % len(TYPES)],
                STATUSES[n % len(STATUSES)],
                f"site-{n % 50}",
                now,
                seen,
            )
        )
    return rows


async def _fill_postgres(dsn: str, tenant_id: int, count: int) -> None:
    now = datetime.now(timezone.utc)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "devices",
            columns=(
                "id",
                "tenant_id",
                "name",
                "device_type",
                "status",
                "location",
                "created_at",
                "updated_at",
                "last_seen",
            ),
            records=[(*r[:6], r[6], r[6], r[7]) for r in _rows(tenant_id, count, now)],
        )
        keys = [await conn.fetchval("INSERT INTO ts_keys (name) VALUES ($1) RETURNING id", k) for k in ("t", "h", "p")]
        await conn.execute(
            "INSERT INTO latest (device_pk, key_id, ts, v_num) SELECT d.pk, k, now(), random() * 100 "
            "FROM devices d, unnest($1::int[]) AS k WHERE d.tenant_id = $2",
            keys,
            tenant_id,
        )
        await conn.execute("VACUUM ANALYZE devices")
        await conn.execute("VACUUM ANALYZE latest")
    finally:
        await conn.close()


def _fill_sqlite(path: str, tenant_id: int, count: int) -> None:
    us = lambda t: None if t is None else int(t.timestamp() * 1_000_000)  # noqa: E731
    now = datetime.now(timezone.utc)
    conn = sqlite3.connect(path, timeout=60)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO devices (id, tenant_id, name, device_type, status, location, created_at, updated_at, "
                "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*r[:6], us(r[6]), us(r[6]), us(r[7])) for r in _rows(tenant_id, count, now)],
            )
            keys = []
            for name in ("t", "h", "p"):
                keys.append(conn.execute("INSERT INTO ts_keys (name) VALUES (?) RETURNING id", (name,)).fetchone()[0])
            for key in keys:
                conn.execute(
                    "INSERT INTO latest (device_pk, key_id, ts, v_num) SELECT pk, ?, ?, abs(random() % 100) "
                    "FROM devices WHERE tenant_id = ?",
                    (key, us(now), tenant_id),
                )
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _cursor(after: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


async def _time(http: httpx.AsyncClient, headers: dict, params: dict, repeat: int) -> tuple[float, float, int]:
    times, items = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        resp = await http.get("/api/v1/fleet/devices", params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text
        items = len(resp.json()["items"])
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], items


async def run_backend(backend: str, count: int, repeat: int) -> None:
    workdir = tempfile.mkdtemp(prefix="telemetra-bench-fleet-")
    db_name = f"telemetra_bench_fleet_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"CREATE DATABASE {db_name}")
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db_name}"
    else:
        url = f"sqlite:///{workdir}/fleet.db"
    server = Server(url, env={"TELEMETRA_ADMIN_KEY": ADMIN_KEY, "TELEMETRA_RATE_LIMITS_ENABLED": "false"})
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            resp = await http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "fleet"})
            tenant_id, headers = resp.json()["tenant"]["id"], {"X-API-Key": resp.json()["api_key"]}
            started = time.perf_counter()
            if backend == "postgres":
                await _fill_postgres(url, tenant_id, count)
            else:
                await asyncio.to_thread(_fill_sqlite, url.removeprefix("sqlite:///"), tenant_id, count)
            print(f"\n{backend}: {count} devices written in {time.perf_counter() - started:.1f} s")
            cases = {
                "first page (50, total)": {},
                "deep page (cursor)": {"cursor": _cursor(f"dev-{count - 60:06d}")},
                "type=boiler": {"type": "boiler"},
                "status=maintenance": {"status": "maintenance"},
                "location=site-7": {"location": "site-7"},
                "online=true": {"online": "true"},
                "online=false": {"online": "false"},
                "q=dev-0999 (id prefix)": {"q": "dev-0999"},
                "q=device 0999 (name)": {"q": "device 0999"},
                "limit=200": {"limit": 200},
            }
            await _time(http, headers, {}, 3)  # warm-up
            for name, params in cases.items():
                median, p90, items = await _time(http, headers, params, repeat)
                print(f"  {name:26} median {median:7.1f} ms   p90 {p90:7.1f} ms   ({items} items)")
    finally:
        server.stop()
        if backend == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
            await admin.close()


async def main(count: int, backends: list[str], repeat: int) -> None:
    for backend in backends:
        await run_backend(backend, count, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.devices, args.backends.split(","), args.repeat))

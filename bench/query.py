"""Query benchmark (not a test): load a fleet's month of data, then time the analytics routes.

    python bench/query.py                       # PostgreSQL, 1,000 devices x 2 keys x 30 days every 5 min
    python bench/query.py --backend sqlite --devices 200

Points are loaded with the backend's bulk path (COPY / executemany) and the rollups built with
`rebuild_rollups` (what `telemetra rollup rebuild` runs), which is timed too. The routes are then called
in process through the ASGI app (FastAPI included, no network), warm, and the median of --runs printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetra.api.app import create_app  # noqa: E402
from telemetra.settings import load_settings  # noqa: E402
from telemetra.store import store_from_settings  # noqa: E402

ADMIN_KEY = "tlma_" + "b" * 43
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_DB = "telemetra_bench_query"
TARGETS_MS = {"energy_month_tenant": 200, "day_1m_avg_device": 50, "year_daily_device": 50, "tenant_stats_day": 300}


def _series(devices: int, days: int, step_min: int, end: datetime, rng: random.Random):
    """(device index, key, ts, value): heaters whose power changes every sample, and an interior temperature."""
    start = end - timedelta(days=days)
    steps = days * 24 * 60 // step_min
    for d in range(devices):
        for i in range(steps):
            ts = start + timedelta(minutes=i * step_min)
            hour = ts.hour + ts.minute / 60
            heating = math.cos((hour - 4) / 24 * 2 * math.pi) > 0.2
            yield d, "instant_power", ts, (2000.0 + rng.gauss(0, 50)) if heating else 0.0
            yield d, "temp_interior", ts, round(19.5 + (1 if heating else -0.5) + rng.gauss(0, 0.2), 2)


async def _load(store, backend: str, tenant_id: int, device_pks: list[int], args, end: datetime) -> int:
    rng = random.Random(1)
    key_ids = {}
    if backend == "postgres":
        async with store._pool.acquire() as conn:  # the bench loads in bulk, below the store's API
            for key in ("instant_power", "temp_interior"):
                key_ids[key] = await conn.fetchval(
                    "INSERT INTO ts_keys (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name "
                    "RETURNING id",
                    key,
                )
            batch, total = [], 0
            latest = {}
            for d, key, ts, value in _series(len(device_pks), args.days, args.step_min, end, rng):
                batch.append((device_pks[d], key_ids[key], ts, value))
                latest[(device_pks[d], key_ids[key])] = (ts, value)
                if len(batch) >= 200_000:
                    await conn.copy_records_to_table(
                        "points", records=batch, columns=("device_pk", "key_id", "ts", "v_num")
                    )
                    total += len(batch)
                    batch = []
            if batch:
                await conn.copy_records_to_table(
                    "points", records=batch, columns=("device_pk", "key_id", "ts", "v_num")
                )
                total += len(batch)
            await conn.copy_records_to_table(
                "latest",
                records=[(pk, kid, ts, v) for (pk, kid), (ts, v) in latest.items()],
                columns=("device_pk", "key_id", "ts", "v_num"),
            )
            await conn.execute("ANALYZE")
        return total
    from telemetra.store.sqlite.time import us

    async with store._tx() as conn:
        for key in ("instant_power", "temp_interior"):
            await conn.execute("INSERT OR IGNORE INTO ts_keys (name) VALUES (?)", (key,))
            async with conn.execute("SELECT id FROM ts_keys WHERE name = ?", (key,)) as cur:
                key_ids[key] = (await cur.fetchone())[0]
    rows, latest = [], {}
    for d, key, ts, value in _series(len(device_pks), args.days, args.step_min, end, rng):
        rows.append((device_pks[d], key_ids[key], us(ts), value))
        latest[(device_pks[d], key_ids[key])] = (us(ts), value)
    async with store._tx() as tx:  # the store's write lock: the app's background tasks write too
        await tx.executemany("INSERT INTO points (device_pk, key_id, ts, v_num) VALUES (?, ?, ?, ?)", rows)
        await tx.executemany(
            "INSERT INTO latest (device_pk, key_id, ts, v_num) VALUES (?, ?, ?, ?)",
            [(pk, kid, ts, v) for (pk, kid), (ts, v) in latest.items()],
        )
    async with store._tx() as tx:
        await tx.execute("ANALYZE")
    return len(rows)


async def _time(client: httpx.AsyncClient, url: str, params: dict, headers: dict, runs: int) -> tuple[float, int]:
    await client.get(url, params=params, headers=headers)  # warm caches and plans
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        resp = await client.get(url, params=params, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text[:300]
    return statistics.median(samples), len(resp.content)


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="telemetra-bench-query-"))
    if args.backend == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        await admin.execute(f"CREATE DATABASE {BENCH_DB}")
        await admin.close()
        url = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DB}"
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    settings = load_settings(database_url=url, admin_key=ADMIN_KEY, log_level="WARNING")
    store = store_from_settings(settings)
    try:
        await store.open()
        await store.migrate()
        end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        await store.maintain(end)
        app = create_app(settings, store)
        async with app.router.lifespan_context(app):
            services = app.state.services
            tenant, _, tenant_key = await services.tenants.create("fleet")
            started = time.perf_counter()
            pks = []
            for i in range(args.devices):
                device, _ = await services.devices.register(
                    tenant.id, name=f"heater-{i:05d}", device_id=f"heater-{i:05d}", device_type="heater"
                )
                pks.append(device.pk)
            points = await _load(store, args.backend, tenant.id, pks, args, end)
            load_s = time.perf_counter() - started
            started = time.perf_counter()
            stats_rows, energy_rows = await store.rebuild_rollups(None)
            rebuild_s = time.perf_counter() - started
            print(
                f"loaded {points:,} points for {args.devices} devices in {load_s:.1f} s; rollups rebuilt in "
                f"{rebuild_s:.1f} s ({stats_rows:,} statistics rows, {energy_rows:,} energy rows)"
            )
            headers = {"X-API-Key": tenant_key}
            day = end - timedelta(days=1)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
                cases = {
                    "energy_month_tenant": (
                        "/api/v1/reports/energy",
                        {"start": (end - timedelta(days=30)).isoformat(), "end": end.isoformat()},
                    ),
                    "day_1m_avg_device": (
                        "/api/v1/devices/heater-00007/telemetry",
                        {
                            "keys": "temp_interior",
                            "interval": "1m",
                            "agg": "avg",
                            "start": day.isoformat(),
                            "end": end.isoformat(),
                        },
                    ),
                    "year_daily_device": (
                        "/api/v1/devices/heater-00007/telemetry",
                        {
                            "keys": "temp_interior",
                            "interval": "1d",
                            "agg": "avg",
                            "start": (end - timedelta(days=365)).isoformat(),
                            "end": end.isoformat(),
                        },
                    ),
                    "tenant_stats_day": (
                        "/api/v1/stats",
                        {"key": "temp_interior", "start": day.isoformat(), "end": end.isoformat()},
                    ),
                }
                rows = []
                for name, (path, params) in cases.items():
                    median_ms, size = await _time(client, path, params, headers, args.runs)
                    limit = TARGETS_MS[name] * (1 if args.backend == "postgres" else 5)
                    rows.append((name, median_ms, limit, size))
        print(
            f"\n{args.backend}, {args.devices} devices x 2 keys x {args.days} days every {args.step_min} min "
            f"= {points:,} points; median of {args.runs} warm runs; {platform.node()}, {os.cpu_count()} cores, "
            f"{datetime.now(timezone.utc):%Y-%m-%d}"
        )
        print("| query | median ms | target ms | met | answer bytes |")
        print("|---|---:|---:|---|---:|")
        for name, median_ms, limit, size in rows:
            print(f"| {name} | {median_ms:.1f} | < {limit} | {'yes' if median_ms < limit else 'NO'} | {size:,} |")
    finally:
        await store.close()
        if args.backend == "postgres" and not args.keep:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step-min", type=int, default=5)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL bench database.")
    asyncio.run(main(parser.parse_args()))

"""Device-chart benchmark (not a test): GET /api/v1/devices/{id}/series over a year of 1-minute data.

    python bench/console_series.py [--backends sqlite,postgres] [--repeat 15] [--days 365]

For each backend: a `telemetra serve` process on a fresh database (PostgreSQL: a database of its own,
dropped at the end), one device, and a year of one value a minute (525,600 points) sent through the batch
route, ending before the rollups' seal mark so that every hour is in the hourly rollups. Then the median
(and p90) server answer, timed by the client, of the chart with `interval=auto` over a year (6 h buckets
from the rollups), a month and a week (30 and 15 min buckets, aggregated by the database from raw points),
a day (1 min), and a year with `interval=1d`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import Server  # noqa: E402  (a serve process on a free port, stopped by its PID)

ADMIN_KEY = "tlma_" + "f" * 43
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 5000
SENDERS = 3


async def _fill(http: httpx.AsyncClient, headers: dict, device_id: str, end: datetime, days: int) -> int:
    minutes = days * 1440
    start = end - timedelta(minutes=minutes)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for first in range(0, minutes, BATCH):
        queue.put_nowait(first)

    async def sender() -> None:
        while not queue.empty():
            first = queue.get_nowait()
            batch = [
                {
                    "device_id": device_id,
                    "data": {"t": 20 + (n % 1440) / 100},
                    "timestamp": (start + timedelta(minutes=n)).isoformat(),
                }
                for n in range(first, min(first + BATCH, minutes))
            ]
            resp = await http.post("/api/v1/telemetry/batch", headers=headers, json=batch)
            assert resp.status_code in (200, 201), resp.text[:300]

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    return minutes


async def _time(http, headers, url: str, params: dict, repeat: int) -> tuple[float, float, int, int]:
    times, body = [], {}
    for _ in range(repeat):
        started = time.perf_counter()
        resp = await http.get(url, params=params, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text
        body = resp.json()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], len(body["buckets"]), body["interval_s"]


async def run_backend(backend: str, days: int, repeat: int) -> None:
    workdir = tempfile.mkdtemp(prefix="telemetra-bench-series-")
    db_name = f"telemetra_bench_series_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f"CREATE DATABASE {db_name}")
        await admin.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{db_name}"
    else:
        url = f"sqlite:///{workdir}/series.db"
    env = {
        "TELEMETRA_ADMIN_KEY": ADMIN_KEY,
        "TELEMETRA_RATE_LIMITS_ENABLED": "false",
        "TELEMETRA_LOG_LEVEL": "WARNING",
        "TELEMETRA_QUERY_MAX_RANGE_DAYS": str(max(366, days + 1)),
    }
    server = Server(url, env=env)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as http:
            resp = await http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "chart"})
            headers = {"X-API-Key": resp.json()["api_key"]}
            device = (await http.post("/api/v1/devices/register", headers=headers, json={"name": "m"})).json()["device"]
            # Before the seal mark (the hour the database was made): every point is merged into its hour.
            end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
            started = time.perf_counter()
            points = await _fill(http, headers, device["id"], end, days)
            print(f"\n{backend}: {points} points written in {time.perf_counter() - started:.0f} s")
            url_path = f"/api/v1/devices/{device['id']}/series"
            cases = {
                "year, auto": (timedelta(days=days), "auto"),
                "year, 1d": (timedelta(days=days), "1d"),
                "month, auto": (timedelta(days=30), "auto"),
                "week, auto": (timedelta(days=7), "auto"),
                "day, auto": (timedelta(days=1), "auto"),
            }
            for name, (span, interval) in cases.items():
                params = {"key": "t", "start": (end - span).isoformat(), "end": end.isoformat(), "interval": interval}
                await _time(http, headers, url_path, params, 2)  # warm-up
                median, p90, buckets, width = await _time(http, headers, url_path, params, repeat)
                print(f"  {name:12} {buckets:5} buckets of {width:6} s   median {median:7.1f} ms   p90 {p90:7.1f} ms")
    finally:
        server.stop()
        if backend == "postgres":
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
            await admin.close()


async def main(backends: list[str], days: int, repeat: int) -> None:
    for backend in backends:
        await run_backend(backend, days, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(main(args.backends.split(","), args.days, args.repeat))

"""Session check vs key check (not a test): the same read route, called as a tenant key and as a signed-in
person, interleaved in one run, on each backend.

    python bench/session_auth.py                      # both backends, 12 rounds of 300 requests each way
    python bench/session_auth.py --backend sqlite --rounds 20

The route is GET /api/v1/devices/{id}/latest (one device lookup, one read of its latest values), driven as a
raw ASGI call into the app (FastAPI and the middleware included, no HTTP client or network, whose cost would
only dilute the difference). A key is checked from the in-memory credential cache; a session is read from the
database at every request (with its user: a disable anywhere applies at once). Each round times N requests of
one kind then N of the other; the figure is the median per request over rounds, and the ratio of medians.
The tenant rate limit is raised out of the way (it is counted alike for both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telemetra.api.app import create_app  # noqa: E402
from telemetra.settings import load_settings  # noqa: E402
from telemetra.store import store_from_url  # noqa: E402

ADMIN_KEY = "tlma_" + "c" * 43
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "bench password 123"
GOAL_RATIO = 1.10


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET through the ASGI app; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("bench", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _round(app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        status = await _call(app, path, headers)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
    return (time.perf_counter() - started) / n * 1e6


async def run(backend: str, database_url: str, rounds: int, per_round: int) -> dict[str, float]:
    settings = load_settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        rate_limit_tenant="100000000/minute",
        activity_flush_interval_s=3600,
        log_level="WARNING",
    )
    store = store_from_url(database_url)
    await store.migrate()
    await store.close()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        await services.keys.ensure_admin_key(ADMIN_KEY)
        tenant, _key, tenant_key = await services.tenants.create(f"bench-{uuid.uuid4().hex[:6]}")
        device, _ = await services.devices.register(tenant.id, name="meter")
        await services.users.create(tenant.id, "bench@example.com", role="viewer", password=PASSWORD, by="bench")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.post(
                f"/api/v1/devices/{device.id}/telemetry", headers={"X-API-Key": tenant_key}, json={"data": {"w": 1}}
            )
            signed = await client.post("/api/v1/session", json={"email": "bench@example.com", "password": PASSWORD})
            session_id = signed.cookies["telemetra_session"]
        path = f"/api/v1/devices/{device.id}/latest"
        by_key = [(b"x-api-key", tenant_key.encode())]
        by_session = [(b"cookie", f"telemetra_session={session_id}".encode())]
        await _round(app, path, by_key, per_round)  # warm both paths
        await _round(app, path, by_session, per_round)
        key_us, session_us = [], []
        for r in range(rounds):
            order = [(by_key, key_us), (by_session, session_us)]
            for headers, into in order if r % 2 == 0 else reversed(order):
                into.append(await _round(app, path, headers, per_round))
    key, session = statistics.median(key_us), statistics.median(session_us)
    return {"key_us": key, "session_us": session, "ratio": session / key}


async def _pg_database() -> str:
    name = f"telemetra_bench_session_{os.getpid()}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return name


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--per-round", type=int, default=300)
    args = parser.parse_args()
    print(
        f"# session vs key check on GET /api/v1/devices/{{id}}/latest ({platform.python_version()}, "
        f"{os.cpu_count()} cores), {args.rounds} rounds x {args.per_round} requests each way"
    )
    print(f"{'backend':10} {'key µs/req':>11} {'session µs/req':>15} {'ratio':>7}  goal <= {GOAL_RATIO:.2f}")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                figures = await run(backend, f"sqlite:///{folder}/bench.db", args.rounds, args.per_round)
        else:
            name = await _pg_database()
            try:
                figures = await run(backend, PG_ADMIN.rsplit("/", 1)[0] + "/" + name, args.rounds, args.per_round)
            finally:
                await _drop(name)
        print(
            f"{backend:10} {figures['key_us']:>11.0f} {figures['session_us']:>15.0f} {figures['ratio']:>7.3f}"
            f"  {'met' if figures['ratio'] <= GOAL_RATIO else 'missed'}"
        )


if __name__ == "__main__":
    asyncio.run(main())

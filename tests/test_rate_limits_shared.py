"""Two `telemetra serve` processes count one device's requests together in a real Redis."""

from __future__ import annotations

import uuid

import httpx
import redis

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_two_servers_share_a_devices_budget_through_redis(pg_database: str, redis_url: str) -> None:
    namespace = f"telemetra-test-{uuid.uuid4().hex[:12]}"
    env = {
        "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
        "TELEMETRA_REDIS_URL": redis_url,
        "TELEMETRA_RATE_LIMIT_NAMESPACE": namespace,
        "TELEMETRA_RATE_LIMIT_DEVICE_TELEMETRY": "6/minute",
    }
    servers = [Server(pg_database, env=env), Server(pg_database, env=env)]
    try:
        with (
            httpx.Client(base_url=servers[0].url, timeout=10) as first,
            httpx.Client(base_url=servers[1].url, timeout=10) as second,
        ):
            tenant = first.post(
                "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "acme"}
            ).json()
            device = first.post(
                "/api/v1/devices/register", headers={"X-API-Key": tenant["api_key"]}, json={"name": "sensor"}
            ).json()["device"]
            headers = {"X-API-Key": device["api_key"]}
            answers = [
                (first, second)[i % 2].post("/api/v1/devices/telemetry", headers=headers, json={"data": {"t": i}})
                for i in range(8)
            ]
            stored = first.get("/api/v1/devices/telemetry", headers=headers)
    finally:
        for server in servers:
            server.stop()
    keys = redis.Redis.from_url(redis_url)
    counters = list(keys.scan_iter(f"{namespace}:*"))
    if counters:
        keys.delete(*counters)  # they would expire within two minutes anyway

    # Six in all, three on each process: with counters in each process's memory, all eight would pass.
    assert [a.status_code for a in answers] == [201] * 6 + [429, 429]
    assert answers[-1].json()["code"] == "rate_limited" and "Retry-After" in answers[-1].headers
    assert counters, "the counters live in Redis under the configured namespace"
    assert stored.json()["total"] == 6

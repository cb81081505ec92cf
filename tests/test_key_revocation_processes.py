"""A key revoked through one `telemetra serve` process is refused by it at once, and by another within its
authentication cache's few seconds."""

from __future__ import annotations

import time

import httpx

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_a_revoked_device_key_stops_working_on_every_process(pg_database: str) -> None:
    env = {"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_AUTH_CACHE_TTL_S": "1"}
    servers = [Server(pg_database, env=env), Server(pg_database, env=env)]
    try:
        with httpx.Client(base_url=servers[0].url, timeout=10) as first, \
                httpx.Client(base_url=servers[1].url, timeout=10) as second:
            tenant = first.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY},
                                json={"name": "acme"}).json()
            owner = {"X-API-Key": tenant["api_key"]}
            device = first.post("/api/v1/devices/register", headers=owner, json={"name": "sensor"}).json()["device"]
            headers = {"X-API-Key": device["api_key"]}
            before = second.get("/api/v1/devices/status", headers=headers)  # the second process knows the key
            key_id = first.get("/api/v1/keys?kind=device", headers=owner).json()["keys"][0]["id"]

            revoked = first.delete(f"/api/v1/keys/{key_id}", headers=owner)
            at_once = first.get("/api/v1/devices/status", headers=headers)
            started = time.monotonic()
            while (after := second.get("/api/v1/devices/status", headers=headers)).status_code == 200:
                assert time.monotonic() - started < 3, "another process still takes a revoked key"
                time.sleep(0.1)
    finally:
        for server in servers:
            server.stop()

    assert before.status_code == 200 and revoked.status_code == 200
    assert at_once.status_code == 401 and at_once.json()["code"] == "api_key_revoked"
    assert after.status_code == 401 and after.json()["code"] == "api_key_revoked"

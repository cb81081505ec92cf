"""A key revoked through one `telemetra serve` process is refused by another at its very next request."""

from __future__ import annotations

import httpx

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_a_revoked_device_key_stops_working_on_every_process(pg_database: str) -> None:
    env = {"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY}
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
            after = second.get("/api/v1/devices/status", headers=headers)
    finally:
        for server in servers:
            server.stop()

    assert before.status_code == 200 and revoked.status_code == 200
    assert after.status_code == 401 and after.json()["code"] == "api_key_revoked"

"""Two real `telemetra serve` processes on one PostgreSQL database split the devices for rule evaluation;
points of one device sent to both are all evaluated, in order, by its owner."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.conftest import TEST_ADMIN_KEY

ENV = {"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_RULES_LEASE_S": "1.5"}


@pytest.fixture
def database_url(pg_database: str) -> str:
    return pg_database  # several processes on one database: what PostgreSQL deployments do


def shards_held(server) -> int:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    return int(float(re.search(r"^telemetra_rule_shards_held (\S+)$", text, re.M).group(1)))


def wait_for(check, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)
    return result


def test_a_device_whose_messages_reach_both_servers_is_evaluated_whole(server_factory) -> None:
    one, two = server_factory(env=ENV), server_factory(env=ENV)
    wait_for(lambda: shards_held(one) == shards_held(two) == 32)

    admin = {"X-API-Key": TEST_ADMIN_KEY}
    tenant = httpx.post(one.url + "/api/v1/admin/tenants", json={"name": "acme"}, headers=admin).json()
    headers = {"X-API-Key": tenant["api_key"]}
    devices = [
        httpx.post(one.url + "/api/v1/devices/register", json={"name": f"meter {i}"}, headers=headers).json()["device"][
            "id"
        ]
        for i in range(2)
    ]
    made = httpx.post(
        one.url + "/api/v1/rules",
        headers=headers,
        json={"name": "jumps", "key": "v", "condition": {"type": "rate", "max_per_s": 4}},
    )
    assert made.status_code == 201, made.text

    # 0 and 5 alternate a second apart (5 units/s: every step fires); the 0s go to one server, the 5s to the
    # other. Each server alone would see a flat series.
    base = datetime.now(timezone.utc) - timedelta(minutes=5)
    for i in range(8):
        for device in devices:
            server = one if i % 2 == 0 else two
            sent = httpx.post(
                f"{server.url}/api/v1/devices/{device}/telemetry",
                headers=headers,
                json={"data": {"v": 5 * (i % 2)}, "timestamp": (base + timedelta(seconds=i)).isoformat()},
            )
            assert sent.status_code == 201, sent.text
        time.sleep(0.4)  # the owner takes what the other queued within 0.1 s: keep the order of the points

    def counted():
        alerts = httpx.get(two.url + "/api/v1/alerts", headers=headers).json()["alerts"]
        return alerts if sorted(a["count"] for a in alerts) == [7, 7] else None

    alerts = wait_for(counted)
    assert {a["device_id"] for a in alerts} == set(devices) and {a["status"] for a in alerts} == {"active"}

    two.stop()  # a clean stop gives its shards back; the other takes them at its next renewal
    wait_for(lambda: shards_held(one) == 64)

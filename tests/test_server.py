"""A real `telemetra serve` process answers seed 002's curl examples over the wire."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_seed_002_examples_over_the_wire(server_factory) -> None:
    server = server_factory("--demo")
    # Its output is a file, as in a container: the keys go to an owner-only file, the output says where.
    assert oct(server.keys_file.stat().st_mode & 0o777) == "0o600"  # written before serving starts
    server.stop()
    keys = server.keys()
    admin_key = re.search(r"Admin key \(shown once, keep it safe\): (\S+)", keys).group(1)
    tenant_key = server.demo()["key"]
    assert f"written to {server.keys_file}" in server.stdout
    for key in (admin_key, tenant_key):
        assert key not in server.stderr and key not in server.stdout  # never in a log line nor the output

    again = server_factory("--demo")  # second start: the admin key is not written again
    with httpx.Client(base_url=again.url, timeout=10) as http:
        # The demo key of the first run is kept for the next (a second run never takes it away).
        assert http.get("/api/v1/devices", headers={"X-API-Key": tenant_key}).status_code == 200
        assert http.get("/api/v1/admin/dashboard", headers={"X-API-Key": admin_key}).status_code == 200
        again.stop()
    assert "Admin key" not in again.stdout and "Admin key" not in again.keys()
    assert again.demo()["key"] == tenant_key

    live = server_factory()
    with httpx.Client(base_url=live.url, timeout=10) as http:
        reg = http.post(
            "/api/v1/devices/register",
            headers={"X-API-Key": tenant_key},
            json={
                "name": "Temperature Sensor 001",
                "description": "Living room sensor",
                "device_type": "sensor",
                "location": "Living Room",
            },
        )
        assert reg.status_code == 201
        device_key = reg.json()["device"]["api_key"]
        sent = http.post(
            "/api/v1/devices/telemetry",
            headers={"X-API-Key": device_key},
            json={
                "data": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
                "metadata": {"battery_level": 85, "signal_strength": -45},
                "type": "sensor",
            },
        )
        assert sent.status_code == 201
        status = http.get("/api/v1/devices/status", headers={"X-API-Key": device_key})
        assert status.json()["device"]["telemetry_count"] == 1
        dash = http.get("/api/v1/admin/dashboard", headers={"X-API-Key": admin_key}).json()
        assert dash["statistics"]["telemetry"]["total_records"] == 1
        assert http.get("/api/v1/admin/dashboard").status_code == 401
        bad = http.post(
            "/api/v1/devices/telemetry",
            headers={"X-API-Key": device_key, "Content-Type": "application/json"},
            content=b"{oops",
        )
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
        assert http.get("/health").json()["status"] == "healthy"
    live.stop()
    assert device_key not in live.stderr and device_key not in live.stdout


@pytest.mark.parametrize("trusted, counted_apart", [("127.0.0.1", True), ("192.0.2.1", False)])
def test_failed_logins_count_the_forwarded_address_only_behind_a_trusted_proxy(
    sqlite_url: str, trusted: str, counted_apart: bool
) -> None:
    """The test client plays a proxy on 127.0.0.1: trusted, each device address it forwards has its own
    budget; untrusted, its X-Forwarded-For is ignored and every login counts against the proxy."""
    server = Server(
        sqlite_url,
        env={
            "TELEMETRA_FORWARDED_ALLOW_IPS": trusted,
            "TELEMETRA_LOGIN_FAILURES_PER_IP": "2/minute",
            "TELEMETRA_LOGIN_FAILURES_PER_DEVICE": "100/minute",
        },
    )
    try:

        def login(address: str) -> int:
            return httpx.post(
                f"{server.url}/auth/login",
                json={"device_id": "nobody", "password": "wrong-password"},
                headers={"X-Forwarded-For": address},
                timeout=10,
            ).status_code

        first = [login("203.0.113.1") for _ in range(3)]
        other = login("203.0.113.2")
    finally:
        server.stop()

    assert first == [401, 401, 429]
    assert other == (401 if counted_apart else 429)


def test_json_logs_are_one_object_a_line_without_secrets(sqlite_url: str) -> None:
    server = Server(sqlite_url, env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_LOG_FORMAT": "json"})
    try:
        tenant = httpx.post(
            f"{server.url}/api/v1/admin/tenants",
            headers={"X-API-Key": TEST_ADMIN_KEY},
            json={"name": "acme"},
            timeout=10,
        ).json()
        httpx.get(f"{server.url}/api/v1/devices", headers={"X-API-Key": tenant["api_key"] + "x"}, timeout=10)
    finally:
        server.stop()

    lines = [json.loads(line) for line in server.stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["level"] == "INFO" and "tenant key issued" in line["message"] for line in lines)
    assert tenant["api_key"] not in server.stderr and TEST_ADMIN_KEY not in server.stderr

"""A real `telemetra serve` process answers seed 002's curl examples over the wire."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, database_url: str, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TELEMETRA_DATABASE_URL": database_url}
        env.pop("TELEMETRA_ADMIN_KEY", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "telemetra", "serve", "--port", str(self.port), *extra],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(f"server did not start: {self.stderr}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.stdout, self.stderr = out, err


@pytest.fixture
def server_factory(database_url) -> Iterator:
    started: list[Server] = []

    def _start(*extra: str) -> Server:
        server = Server(database_url, *extra)
        started.append(server)
        return server

    yield _start
    for server in started:
        server.stop()


def test_seed_002_examples_over_the_wire(server_factory) -> None:
    server = server_factory("--demo")
    server.stop()  # keys are printed before serving starts
    out = server.stdout
    admin_key = re.search(r"Admin key \(shown once, keep it safe\): (\S+)", out).group(1)
    tenant_key = re.search(r"Demo tenant 'demo' key for this run: (\S+)", out).group(1)
    assert admin_key not in server.stderr and tenant_key not in server.stderr  # never in a log line

    again = server_factory("--demo")  # second start: the admin key is not printed again
    with httpx.Client(base_url=again.url, timeout=10) as http:
        # The demo key of the first run was replaced by this run's.
        assert http.get("/api/v1/devices", headers={"X-API-Key": tenant_key}).status_code == 401
        assert http.get("/api/v1/admin/dashboard", headers={"X-API-Key": admin_key}).status_code == 200
        again.stop()
    assert "Admin key" not in again.stdout
    tenant_key = re.search(r"key for this run: (\S+)", again.stdout).group(1)

    live = server_factory()
    with httpx.Client(base_url=live.url, timeout=10) as http:
        reg = http.post("/api/v1/devices/register", headers={"X-API-Key": tenant_key},
                        json={"name": "Temperature Sensor 001", "description": "Living room sensor",
                              "device_type": "sensor", "location": "Living Room"})
        assert reg.status_code == 201
        device_key = reg.json()["device"]["api_key"]
        sent = http.post("/api/v1/devices/telemetry", headers={"X-API-Key": device_key},
                         json={"data": {"temperature": 22.5, "humidity": 65, "pressure": 1013.25},
                               "metadata": {"battery_level": 85, "signal_strength": -45}, "type": "sensor"})
        assert sent.status_code == 201
        status = http.get("/api/v1/devices/status", headers={"X-API-Key": device_key})
        assert status.json()["device"]["telemetry_count"] == 1
        dash = http.get("/api/v1/admin/dashboard", headers={"X-API-Key": admin_key}).json()
        assert dash["statistics"]["telemetry"]["total_records"] == 1
        assert http.get("/api/v1/admin/dashboard").status_code == 401
        bad = http.post("/api/v1/devices/telemetry", headers={"X-API-Key": device_key,
                                                              "Content-Type": "application/json"}, content=b"{oops")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_json"
        assert http.get("/health").json()["status"] == "healthy"
    live.stop()
    assert device_key not in live.stderr and device_key not in live.stdout

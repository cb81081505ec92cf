"""`telemetra simulate` against a real server, through each transport: what it reports acked is what is stored."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from telemetra.store import Store
from tests.brokers import start_mosquitto, start_nats

COUNT = 240


@pytest.mark.parametrize("via, profile", [("http", "environment"), ("mqtt", "energy"), ("nats", "meter")])
async def test_simulated_messages_are_all_acknowledged_and_stored(
    via: str, profile: str, server_factory, store: Store, tmp_path: Path
) -> None:
    admin_key = "tlma_" + secrets.token_urlsafe(32)
    env = {"TELEMETRA_ADMIN_KEY": admin_key, "TELEMETRA_LOG_LEVEL": "WARNING"}
    broker = None
    if via == "mqtt":
        broker = start_mosquitto(tmp_path)
        env |= {
            "TELEMETRA_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
            "TELEMETRA_MQTT_CLIENT_ID": f"sim-test-{uuid.uuid4().hex[:6]}",
        }
    elif via == "nats":
        broker = start_nats(tmp_path)
        env["TELEMETRA_NATS_URL"] = f"nats://127.0.0.1:{broker.port}"
    try:
        server = server_factory(env=env)
        tenant = httpx.post(
            f"{server.url}/api/v1/admin/tenants", headers={"X-API-Key": admin_key}, json={"name": "sim"}, timeout=10
        ).json()
        broker_url = [] if broker is None else [f"--{via}", f"{via}://127.0.0.1:{broker.port}"]

        def simulate() -> dict:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "telemetra",
                    "simulate",
                    "--url",
                    server.url,
                    "--key",
                    tenant["api_key"],
                    "--devices",
                    "12",
                    "--rate",
                    "0",
                    "--count",
                    str(COUNT),
                    "--via",
                    via,
                    "--profile",
                    profile,
                    "--json",
                    *broker_url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                server.stop()
                raise AssertionError(f"{result.stderr[-1500:]}\nserver: {server.stderr[-3000:]}")
            return json.loads(result.stdout)

        report = simulate()
        assert (report["devices"], report["sent"], report["acked"], report["failed"]) == (12, COUNT, COUNT, {})

        async def stored() -> int:
            return (await store.list_messages(limit=1))[1]

        if via == "http":
            assert await stored() == COUNT  # a 201 means committed
        else:
            # The broker's ack means the broker holds it; Telemetra commits it soon after, once.
            deadline = asyncio.get_running_loop().time() + 30
            while await stored() < COUNT and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # a duplicate would land within this
            assert await stored() == COUNT
        devices = httpx.get(f"{server.url}/api/v1/devices", headers={"X-API-Key": tenant["api_key"]}, timeout=10).json()
        assert len(devices["devices"]) == 12
        if via == "http":
            # A second run reuses the first run's devices (a new key each), and its messages are not replays.
            again = simulate()
            assert (again["devices"], again["acked"], again["failed"]) == (12, COUNT, {})
            assert await stored() == 2 * COUNT
            devices = httpx.get(
                f"{server.url}/api/v1/devices", headers={"X-API-Key": tenant["api_key"]}, timeout=10
            ).json()
            assert len(devices["devices"]) == 12
    finally:
        if broker is not None:
            broker.stop()


def test_a_broker_that_refuses_the_login_stops_the_simulator_at_once(server_factory, tmp_path: Path) -> None:
    admin_key = "tlma_" + secrets.token_urlsafe(32)
    (tmp_path / "passwd").write_text("")
    # Run as us: the default user `mosquitto` cannot read a file in our temporary folder.
    broker = start_mosquitto(
        tmp_path,
        extra_config=f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
    )
    try:
        server = server_factory(env={"TELEMETRA_ADMIN_KEY": admin_key, "TELEMETRA_LOG_LEVEL": "WARNING"})
        tenant = httpx.post(
            f"{server.url}/api/v1/admin/tenants", headers={"X-API-Key": admin_key}, json={"name": "sim"}, timeout=10
        ).json()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "telemetra",
                "simulate",
                "--url",
                server.url,
                "--key",
                tenant["api_key"],
                "--devices",
                "2",
                "--count",
                "10",
                "--via",
                "mqtt",
                "--mqtt",
                f"mqtt://127.0.0.1:{broker.port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        broker.stop()

    assert result.returncode == 1
    assert "refused the connection: Not authorized" in result.stderr and "Traceback" not in result.stderr

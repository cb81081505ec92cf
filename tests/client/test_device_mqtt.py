"""The device client over MQTT with TLS (its key as the broker password): readings arrive once and in order, a
command comes down the broker and its ack shows in the command's status, the desired state reaches its handler
and what it reports comes back."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from telemetra.store import Store
from tests.brokers import start_mosquitto
from tests.certs import CertificateFiles
from tests.client.test_device_run import READER, _readings, _wait
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server

HANDLERS = """

def on_desired(delta):
    return {"fan": delta.get("fan")}
"""


async def test_readings_commands_and_desired_state_over_mqtt_tls(
    database_url: str, store: Store, tmp_path: Path, certificates: CertificateFiles
) -> None:
    broker = start_mosquitto(
        tmp_path,
        extra_config=(
            f"cafile {certificates.ca_file}\ncertfile {certificates.cert_file}\nkeyfile {certificates.key_file}\n"
            f"allow_anonymous true\nuser {pwd.getpwuid(os.geteuid()).pw_name}"
        ),
    )
    env = {
        "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
        "TELEMETRA_MQTT_URL": f"mqtts://127.0.0.1:{broker.port}",
        "TELEMETRA_MQTT_CA_FILE": certificates.ca_file,
        "TELEMETRA_MQTT_CLIENT_ID": f"telemetra-{uuid.uuid4().hex[:8]}",
    }
    server = Server(database_url, env=env)
    device = None
    err = tempfile.TemporaryFile("w+")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            tenant = http.post(
                "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "mqtt-pis"}
            ).json()
            owner = {"X-API-Key": tenant["api_key"]}
            made = http.post("/api/v1/devices/register", headers=owner, json={"name": "pi", "id": "pi-1"})
            key = made.json()["device"]["api_key"]
            (tmp_path / "device.py").write_text(READER + HANDLERS)
            config = tmp_path / "device.toml"
            config.write_text(
                'device_id = "pi-1"\n'
                f'key = "{key}"\n'
                'transport = "mqtt"\n'
                "period_s = 0.1\n"
                'reader = "device.py:read"\n'
                'command_handler = "device.py:on_command"\n'
                'desired_handler = "device.py:on_desired"\n'
                'buffer_file = "outbox.sqlite"\n'
                f'[mqtt]\nurl = "mqtts://127.0.0.1:{broker.port}"\nca_file = "{certificates.ca_file}"\n'
            )
            device = subprocess.Popen(
                [sys.executable, "-m", "telemetra.client", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            _wait(lambda: http.get("/api/v1/devices/pi-1/latest", headers=owner).json().get("latest", {}).get("n"))
            sent = http.post("/api/v1/devices/pi-1/commands", headers=owner, json={"name": "blink", "params": {"x": 1}})
            command_id = sent.json()["command"]["id"]

            def acked() -> bool:
                shown = http.get(f"/api/v1/devices/pi-1/commands/{command_id}", headers=owner).json()["command"]
                return shown["status"] == "succeeded"

            _wait(acked)
            shown = http.get(f"/api/v1/devices/pi-1/commands/{command_id}", headers=owner).json()["command"]
            assert shown["result"] == {"did": "blink", "params": {"x": 1}} and shown["transport"] == "mqtt"
            assert http.put("/api/v1/devices/pi-1/desired", headers=owner, json={"state": {"fan": "on"}}).is_success

            def reached() -> bool:
                return http.get("/api/v1/devices/pi-1/state", headers=owner).json()["delta"] == {}

            _wait(reached)
    finally:
        if device is not None:
            device.send_signal(signal.SIGTERM)
            code = device.wait(timeout=20)
        server.stop()
        broker.stop()
        err.seek(0)
        log = err.read()
        err.close()
    assert code == 0, log
    stored = await _readings(store)
    readings = [n for n in stored if n is not None]
    assert readings == list(range(1, len(readings) + 1)) and len(readings) >= 3, stored
    assert "Traceback" not in log

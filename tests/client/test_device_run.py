"""`telemetra device run` against a real `telemetra serve`, both processes on loopback: readings arrive once and in
order across a server stopped and restarted; a command reaches the handler and its ack shows in the command's
status; the login token is renewed; a wrong password stops the client with one clear line."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from telemetra.store import Store
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server

READER = """
import os
from pathlib import Path

COUNT = Path(__file__).with_name("count.txt")
n = 0


def read():
    global n
    n += 1
    COUNT.with_suffix(".tmp").write_text(str(n))
    os.replace(COUNT.with_suffix(".tmp"), COUNT)  # the test never reads half a file
    return {"n": n, "cpu_temp": 40 + n % 7}


def on_command(name, params):
    Path(__file__).with_name("commands.txt").open("a").write(name + "\\n")
    if name == "explode":
        raise RuntimeError("as asked")
    return {"did": name, "params": params}
"""


def _config(tmp_path: Path, url: str, password: str) -> Path:
    (tmp_path / "device.py").write_text(READER)
    config = tmp_path / "device.toml"
    config.write_text(
        f'url = "{url}"\n'
        'device_id = "pi-1"\n'
        f'password = "{password}"\n'
        "period_s = 0.1\n"
        "heartbeat_s = 0.3\n"
        "renew_before_s = 28\n"  # tokens live 30 s here: renewed every 2 s
        'reader = "device.py:read"\n'
        'command_handler = "device.py:on_command"\n'
        'buffer_file = "outbox.sqlite"\n'
        "batch_max = 50\n"
        "max_backoff_s = 1\n"
    )
    return config


class DeviceProcess:
    def __init__(self, config: Path) -> None:
        self._err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telemetra", "device", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            text=True,
        )

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._err.seek(0)
        text = self._err.read()
        self._err.close()
        return code, text


async def _readings(store: Store) -> list[int]:
    device = await store.get_device("pi-1")
    messages, _ = await store.list_messages(device_pk=device.pk, limit=10_000)
    return [m.data.get("n") for m in sorted(messages, key=lambda m: m.ts)]


def _wait(check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _setup(url: str) -> dict[str, str]:
    with httpx.Client(base_url=url, timeout=10) as http:
        tenant = http.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "pis"}).json()
        owner = {"X-API-Key": tenant["api_key"]}
        assert (
            http.post("/api/v1/devices/register", headers=owner, json={"name": "pi", "id": "pi-1"}).status_code == 201
        )
        assert http.put("/api/v1/devices/pi-1/credentials", headers=owner, json={"password": "pass-w0rd-1"}).is_success
    return owner


async def test_outage_commands_and_token_renewal(database_url: str, store: Store, tmp_path: Path) -> None:
    env = {"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_JWT_LIFETIME_S": "30"}
    server = Server(database_url, env=env)
    device = None
    try:
        owner = _setup(server.url)
        device = DeviceProcess(_config(tmp_path, server.url, "pass-w0rd-1"))
        _wait(lambda: (tmp_path / "count.txt").exists() and int((tmp_path / "count.txt").read_text()) >= 10)
        time.sleep(0.5)
        server.stop()  # the platform goes away; the device keeps reading into its outbox
        at_stop = int((tmp_path / "count.txt").read_text())
        time.sleep(3.0)
        assert int((tmp_path / "count.txt").read_text()) >= at_stop + 15
        # Back on the same address, with a new signing secret: the old token is refused, the client logs in again.
        server = Server(database_url, env=env, port=server.port)
        with httpx.Client(base_url=server.url, headers=owner, timeout=10) as http:
            made = http.post("/api/v1/devices/pi-1/commands", json={"name": "blink", "params": {"times": 3}})
            command_id = made.json()["command"]["id"]
            failing = http.post("/api/v1/devices/pi-1/commands", json={"name": "explode"}).json()["command"]["id"]

            def finished() -> bool:
                shown = http.get(f"/api/v1/devices/pi-1/commands/{command_id}").json()["command"]
                return shown["status"] == "succeeded"

            _wait(finished)
            shown = http.get(f"/api/v1/devices/pi-1/commands/{command_id}").json()["command"]
            assert shown["result"] == {"did": "blink", "params": {"times": 3}}
            _wait(lambda: http.get(f"/api/v1/devices/pi-1/commands/{failing}").json()["command"]["status"] == "failed")
            failed = http.get(f"/api/v1/devices/pi-1/commands/{failing}").json()["command"]
            assert failed["result"] == {"error": "RuntimeError: as asked"}
        time.sleep(4.5)  # two more renewals
    finally:
        code, log = device.stop() if device else (None, "")
        server.stop()
    assert code == 0, log
    stored = await _readings(store)
    assert stored == list(range(1, len(stored) + 1)), stored  # every reading once, in order, none missing
    assert len(stored) >= at_stop + 15
    last_word = [line for line in log.splitlines() if "stopped:" in line][-1]
    assert f"{len(stored)} sent" in last_word, last_word
    assert log.count("the platform is unreachable") == 1, log  # once per change of state
    assert log.count("token renewed") >= 2, log
    assert "Traceback" not in log
    assert (tmp_path / "commands.txt").read_text().splitlines() == ["blink", "explode"]  # each command once


def test_a_wrong_password_stops_the_client_with_one_line(sqlite_url: str, tmp_path: Path) -> None:
    server = Server(sqlite_url, env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY})
    try:
        _setup(server.url)
        device = DeviceProcess(_config(tmp_path, server.url, "wrong-password"))
        device.proc.wait(timeout=30)
        code, log = device.stop()
    finally:
        server.stop()
    assert code == 1
    lines = log.strip().splitlines()
    assert len(lines) == 1, log
    assert lines[0].startswith("error: login refused for device 'pi-1'") and "password" in lines[0]

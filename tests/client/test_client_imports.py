"""The device client imports with httpx (and paho-mqtt) alone: the server's dependencies are blocked here."""

from __future__ import annotations

import subprocess
import sys

from telemetra.client import Outbox

SERVER_ONLY = [
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "pydantic_settings",
    "asyncpg",
    "aiosqlite",
    "typer",
    "orjson",
    "prometheus_client",
    "nats",
    "redis",
    "cachetools",
    "jwt",
    "argon2",
    "limits",
    "pythonjsonlogger",
]

PROBE = f"""
import sys
BLOCKED = set({SERVER_ONLY!r})

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked on a device: " + name)

sys.meta_path.insert(0, Blocker())
import telemetra.client
import telemetra.client.mqtt_link
import telemetra.client.__main__
from telemetra.client import DeviceClient, DeviceConfig, cpu_temperature
DeviceConfig(device_id="pi-1", url="http://127.0.0.1:1", key="k")
ours = sorted(m for m in sys.modules if m.startswith("telemetra") and not m.startswith("telemetra.client"))
assert ours == ["telemetra"], ours
print("ok")
"""


def test_the_client_imports_without_the_server_dependencies() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_outbox_is_bounded_and_counts_what_it_drops(tmp_path) -> None:
    box = Outbox(tmp_path / "out.sqlite", max_messages=3)
    for n in range(1, 6):
        box.put({"data": {"n": n}, "msg_id": f"m{n}"})
    assert len(box) == 3 and box.overflow == 2
    assert [m["data"]["n"] for _, m in box.oldest(10)] == [3, 4, 5]  # the oldest went first
    seq = box.oldest(1)[0][0]
    box.remove_through(seq)
    box.close()
    again = Outbox(tmp_path / "out.sqlite", max_messages=3)  # what it holds and dropped survives a restart
    assert [m["msg_id"] for _, m in again.oldest(10)] == ["m4", "m5"] and again.overflow == 2
    again.put({"data": {"text": "nul \\x00 and ünïcode"}, "msg_id": "m6"})
    assert again.oldest(10)[-1][1]["data"]["text"] == "nul \\x00 and ünïcode"
    again.close()


def test_a_bad_config_file_is_one_line(tmp_path) -> None:
    cases = {
        "missing.toml": None,
        "typo.toml": 'device_id = "pi"\nurl = "http://x"\nkey = "k"\nperod_s = 1\n',
        "both.toml": 'device_id = "pi"\nurl = "http://x"\nkey = "k"\npassword = "p"\n',
        "broken.toml": 'device_id = "pi\n',
        "mqtt.toml": 'device_id = "pi"\ntransport = "mqtt"\npassword = "p"\nurl = "http://x"\n',
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "telemetra.client", "--config", str(tmp_path / name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, done.stderr)
    typo = subprocess.run(
        [sys.executable, "-m", "telemetra.client", "--config", str(tmp_path / "typo.toml")],
        capture_output=True,
        text=True,
    )
    assert "perod_s" in typo.stderr

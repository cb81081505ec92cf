"""Figures of the edge parts: the puller's CPU polling 1,000 upstream objects every 10 s, and the device client's
readings per second (sustained, and draining an outbox after an outage) over HTTP and MQTT with its RSS.

    .venv/bin/python bench/edge.py [--pull-s 60] [--client-s 20]

Everything runs as processes of its own on loopback: the stand-in upstream (tests/upstream_standin.py),
`telemetra pull`, `telemetra serve` on a SQLite file, a Mosquitto on a free port, `python -m telemetra.client`.
CPU and memory are read from /proc (utime + stime; VmHWM, the peak RSS).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.brokers import free_port, start_mosquitto, wait_for_port  # noqa: E402
from tests.servers import Server  # noqa: E402

ADMIN_KEY = "bench-admin-key-" + "x" * 32
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def bench_pull(folder: Path, seconds: float) -> None:
    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.upstream_standin", "--port", str(port), "--tick", "10", "--generate", "1000"],
        cwd=ROOT,
    )
    wait_for_port(port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMETRA_")}
    env["TELEMETRA_DATABASE_URL"] = f"sqlite:///{folder}/pull.db"
    puller = subprocess.Popen(
        [sys.executable, "-m", "telemetra", "pull", "--from", f"http://127.0.0.1:{port}", "--every", "10s"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(15)  # start-up, the first poll (1,000 devices and 10 tenants created) and a second one
        start_cpu, start = cpu_s(puller.pid), time.monotonic()
        time.sleep(seconds)
        used = cpu_s(puller.pid) - start_cpu
        elapsed = time.monotonic() - start
        print(
            f"pull: 1,000 objects every 10 s: {100 * used / elapsed:.1f} % of one core over {elapsed:.0f} s "
            f"(steady state), peak RSS {peak_rss_mb(puller.pid):.0f} MB"
        )
    finally:
        puller.send_signal(signal.SIGTERM)
        puller.wait(30)
        upstream.terminate()
        upstream.wait(10)


def _client(folder: Path, name: str, config: str) -> subprocess.Popen:
    (folder / f"{name}.toml").write_text(config)
    (folder / "reader.py").write_text(
        "n = 0\n\ndef read():\n    global n\n    n += 1\n    return {'n': n, 't': 21.5}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "telemetra.client", "--config", str(folder / f"{name}.toml")],
        stderr=open(folder / f"{name}.log", "w"),
    )


def _sent(folder: Path, name: str) -> int:
    found = re.findall(r"stopped: (\d+) sent", (folder / f"{name}.log").read_text())
    return int(found[-1]) if found else 0


def bench_client(folder: Path, seconds: float) -> None:
    # Without rate limits: the device's own budgets (60 batches a minute) would measure the server, not the client.
    limits_off = {"TELEMETRA_RATE_LIMITS_ENABLED": "false"}
    server = Server(f"sqlite:///{folder}/client.db", env={"TELEMETRA_ADMIN_KEY": ADMIN_KEY, **limits_off})
    broker = start_mosquitto(folder)
    mqtt_server = Server(
        f"sqlite:///{folder}/client-mqtt.db",
        env={"TELEMETRA_ADMIN_KEY": ADMIN_KEY, "TELEMETRA_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}", **limits_off},
    )
    try:
        keys = {}
        for which, srv in (("http", server), ("mqtt", mqtt_server)):
            with httpx.Client(base_url=srv.url, timeout=10) as http:
                tenant = http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "b"}).json()
                made = http.post(
                    "/api/v1/devices/register",
                    headers={"X-API-Key": tenant["api_key"]},
                    json={"name": "d", "id": "bench-1"},
                )
                keys[which] = made.json()["device"]["api_key"]
        common = 'device_id = "bench-1"\nreader = "reader.py:read"\nbatch_max = 500\nheartbeat_s = 5\n'
        configs = {
            "http": f'url = "{server.url}"\nkey = "{keys["http"]}"\nperiod_s = 0.0001\nbuffer_file = "http.sqlite"\n',
            "mqtt": (
                f'key = "{keys["mqtt"]}"\ntransport = "mqtt"\nperiod_s = 0.0001\nbuffer_file = "mqtt.sqlite"\n'
                f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
            ),
        }
        for which, config in configs.items():
            proc = _client(folder, which, common + config)
            time.sleep(seconds)
            rss = peak_rss_mb(proc.pid)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            sent = _sent(folder, which)
            print(f"device client over {which}: {sent / seconds:.0f} readings/s sustained, peak RSS {rss:.0f} MB")
        # An outage's backlog: 20,000 readings in the outbox, sent at once when the platform answers.
        backlog = 20_000
        sys.path.insert(0, str(ROOT))
        from telemetra.client.buffer import Outbox

        box = Outbox(folder / "drain.sqlite", backlog)
        for n in range(backlog):
            box.put({"data": {"n": n}, "msg_id": f"drain-{n}"})
        box.close()
        drain = (
            common + f'url = "{server.url}"\nkey = "{keys["http"]}"\nperiod_s = 3600\nbuffer_file = "drain.sqlite"\n'
        )
        (folder / "reader.py").write_text("def read():\n    return {}\n")
        start = time.monotonic()
        proc = _client(folder, "drain", drain)
        box = Outbox(folder / "drain.sqlite", backlog)
        while len(box) > 0 and time.monotonic() - start < 120:
            time.sleep(0.05)
            box.close()
            box = Outbox(folder / "drain.sqlite", backlog)
        elapsed = time.monotonic() - start
        box.close()
        rss = peak_rss_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        print(
            f"device client draining {backlog} buffered readings over HTTP: {backlog / elapsed:.0f} readings/s (incl. start-up), peak RSS {rss:.0f} MB"
        )
    finally:
        server.stop()
        mqtt_server.stop()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pull-s", type=float, default=60)
    parser.add_argument("--client-s", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_pull(Path(folder), args.pull_s)
        bench_client(Path(folder), args.client_s)


if __name__ == "__main__":
    main()

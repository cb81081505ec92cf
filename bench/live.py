"""Live-stream benchmark (not a test): how soon a committed message reaches an SSE client.

    python bench/live.py [--messages 200] [--rate 20]

Starts two `telemetra serve` processes on one SQLite file, joined by the Redis on 127.0.0.1:6379 (a
channel of its own), opens a stream on each, and posts messages one by one to the first. For each it
prints the time from sending the request to the event's arrival, on the process that committed it and on
the other one (through Redis). That upper-bounds commit-to-stream: the commit happens in between.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import Server  # noqa: E402  (a serve process on a free port, stopped by its PID)

ADMIN_KEY = "tlma_" + "c" * 43


async def _listen(url: str, device_id: str, headers: dict, arrived: dict[int, float], ready: asyncio.Event) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=None) as http,
        http.stream("GET", f"/api/v1/devices/{device_id}/stream", headers=headers) as sse,
    ):
        async for line in sse.aiter_lines():
            if line == ": subscribed":
                ready.set()
            elif line.startswith("data: "):
                arrived[json.loads(line[6:])["values"]["n"]] = time.perf_counter()


def _summary(name: str, sent: dict[int, float], arrived: dict[int, float]) -> None:
    ms = sorted((arrived[n] - sent[n]) * 1000 for n in sent if n in arrived)
    lost = len(sent) - len(ms)
    print(
        f"{name:>18}: median {statistics.median(ms):6.1f} ms   p95 {ms[int(len(ms) * 0.95) - 1]:6.1f} ms   "
        f"max {ms[-1]:6.1f} ms   missing {lost}"
    )


async def main(messages: int, rate: float) -> None:
    workdir = tempfile.mkdtemp(prefix="telemetra-bench-live-")
    url = f"sqlite:///{workdir}/live.db"
    env = {
        "TELEMETRA_ADMIN_KEY": ADMIN_KEY,
        "TELEMETRA_REDIS_URL": "redis://127.0.0.1:6379/0",
        "TELEMETRA_REDIS_CHANNEL": f"telemetra-bench:{uuid.uuid4().hex}",
        "TELEMETRA_LOG_LEVEL": "WARNING",
    }
    ingest, other = Server(url, env=env), Server(url, env=env)
    try:
        async with httpx.AsyncClient(base_url=ingest.url, timeout=10) as http:
            tenant = {
                "X-API-Key": (
                    await http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "bench"})
                ).json()["api_key"]
            }
            device = (await http.post("/api/v1/devices/register", headers=tenant, json={"name": "m"})).json()["device"]
            same, remote = {}, {}
            ready = [asyncio.Event(), asyncio.Event()]
            listeners = [
                asyncio.create_task(_listen(ingest.url, device["id"], tenant, same, ready[0])),
                asyncio.create_task(_listen(other.url, device["id"], tenant, remote, ready[1])),
            ]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
            sent: dict[int, float] = {}
            for n in range(messages):
                sent[n] = time.perf_counter()
                resp = await http.post(
                    "/api/v1/devices/telemetry", headers={"X-API-Key": device["api_key"]}, json={"n": n}
                )
                assert resp.status_code == 201, resp.text
                await asyncio.sleep(1 / rate)
            await asyncio.sleep(1)
            for task in listeners:
                task.cancel()
        print(f"{messages} messages at {rate:g}/s, one device, SQLite, Redis pub/sub between two processes")
        _summary("same process", sent, same)
        _summary("other process", sent, remote)
    finally:
        ingest.stop()
        other.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rate))

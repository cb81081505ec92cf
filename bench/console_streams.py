"""Console-stream benchmark (not a test): N console streams, each over M devices, fed by batches.

    python bench/console_streams.py [--streams 50] [--devices 20] [--seconds 10] [--rate 200]

Starts two `telemetra serve` processes on one SQLite file joined by the Redis on 127.0.0.1:6379 (a channel
of its own); half the streams (`GET /api/v1/stream/console?devices=...`) open on each. Every device is in
one stream's list; batches of `--batch` messages go to the first process at about `--rate` messages/s. It
prints the messages committed per second, the events delivered per second to all streams, and the latency
from sending a batch to each event's arrival (which upper-bounds commit-to-stream), per process.
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

ADMIN_KEY = "tlma_" + "d" * 43


async def _listen(
    url: str, ids: list[str], headers: dict, arrived: list[tuple[int, float]], ready, *, parse: bool = True
) -> None:
    """Follow a console stream; record each event's batch and arrival (``parse``), or only count events
    (the ingest-cost runs: the client shares the machine's cores with the servers)."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=None) as http,
        http.stream("GET", "/api/v1/stream/console", params={"devices": ",".join(ids)}, headers=headers) as sse,
    ):
        assert sse.status_code == 200, await sse.aread()
        if not parse:
            async for chunk in sse.aiter_raw():
                if b": subscribed" in chunk:
                    ready.set()
                arrived.extend([(-1, 0.0)] * chunk.count(b"\ndata: "))
            return
        async for line in sse.aiter_lines():
            if line == ": subscribed":
                ready.set()
            elif line.startswith("data: "):
                arrived.append((json.loads(line[6:])["values"]["batch"], time.perf_counter()))


def _latency(name: str, sent: dict[int, float], arrived: list[tuple[int, float]], expected: int) -> None:
    ms = sorted((at - sent[batch]) * 1000 for batch, at in arrived if batch in sent)
    if not ms:
        print(f"{name:>14}: nothing arrived")
        return
    print(
        f"{name:>14}: {len(ms)}/{expected} events   median {statistics.median(ms):6.1f} ms   "
        f"p95 {ms[int(len(ms) * 0.95) - 1]:6.1f} ms   max {ms[-1]:6.1f} ms"
    )


async def _full_speed(url: str, tenant: dict, ids: list[str], seconds: float) -> float:
    """Committed messages/s of two senders posting batches of 1000 as fast as they are answered."""
    counted = 0

    async def sender(http: httpx.AsyncClient, offset: int) -> None:
        nonlocal counted
        n = offset
        while time.perf_counter() < deadline:
            messages = [{"device_id": ids[(n * 1000 + i) % len(ids)], "data": {"batch": -1}} for i in range(1000)]
            resp = await http.post("/api/v1/telemetry/batch", headers=tenant, json={"messages": messages})
            assert resp.status_code in (200, 201), resp.text[:200]
            counted += 1000
            n += 2

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(sender(http, 0), sender(http, 1))
        return counted / (time.perf_counter() - started)


async def _ingest_cost(servers, tenant: dict, ids: list[str], streams: int, per_stream: int, seconds: float) -> None:
    without: list[float] = []
    with_streams: list[float] = []
    delivered: list[int] = []
    for _ in range(2):
        without.append(await _full_speed(servers[0].url, tenant, ids, seconds))
        arrived: list[list[tuple[int, float]]] = [[] for _ in range(streams)]
        ready = [asyncio.Event() for _ in range(streams)]
        listeners = [
            asyncio.create_task(
                _listen(
                    servers[s % 2].url,
                    ids[s * per_stream : (s + 1) * per_stream],
                    tenant,
                    arrived[s],
                    ready[s],
                    parse=False,
                )
            )
            for s in range(streams)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
        with_streams.append(await _full_speed(servers[0].url, tenant, ids, seconds))
        delivered.append(sum(len(a) for a in arrived))
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    a, b = statistics.median(without), statistics.median(with_streams)
    print(
        f"batch ingest at full speed: {a:8.0f} msg/s without streams, {b:8.0f} msg/s with {streams} open "
        f"(cost {100 * (1 - b / a):+.1f} %; runs {[round(x) for x in without]} / {[round(x) for x in with_streams]}; "
        f"events delivered {delivered})"
    )


async def main(
    streams: int, devices_per_stream: int, seconds: float, rate: float, batch: int, ingest_cost: bool = False
) -> None:
    workdir = tempfile.mkdtemp(prefix="telemetra-bench-console-")
    url = f"sqlite:///{workdir}/console.db"
    env = {
        "TELEMETRA_ADMIN_KEY": ADMIN_KEY,
        "TELEMETRA_REDIS_URL": "redis://127.0.0.1:6379/0",
        "TELEMETRA_REDIS_CHANNEL": f"telemetra-bench:{uuid.uuid4().hex}",
        "TELEMETRA_LOG_LEVEL": "WARNING",
        "TELEMETRA_RATE_LIMITS_ENABLED": "false",
    }
    servers = [Server(url, env=env), Server(url, env=env)]
    try:
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as http:
            resp = await http.post("/api/v1/admin/tenants", headers={"X-API-Key": ADMIN_KEY}, json={"name": "bench"})
            tenant = {"X-API-Key": resp.json()["api_key"]}
            ids = [f"c{n:05d}" for n in range(streams * devices_per_stream)]
            for device_id in ids:
                resp = await http.post(
                    "/api/v1/devices/register", headers=tenant, json={"name": device_id, "id": device_id}
                )
                assert resp.status_code == 201, resp.text
            arrived: list[list[tuple[int, float]]] = [[] for _ in range(streams)]
            ready = [asyncio.Event() for _ in range(streams)]
            listeners = [
                asyncio.create_task(
                    _listen(
                        servers[s % 2].url,
                        ids[s * devices_per_stream : (s + 1) * devices_per_stream],
                        tenant,
                        arrived[s],
                        ready[s],
                    )
                )
                for s in range(streams)
            ]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
            sent: dict[int, float] = {}
            started, n = time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                messages = [{"device_id": ids[(n * batch + i) % len(ids)], "data": {"batch": n}} for i in range(batch)]
                sent[n] = time.perf_counter()
                resp = await http.post("/api/v1/telemetry/batch", headers=tenant, json={"messages": messages})
                assert resp.status_code in (200, 201, 207), resp.text
                n += 1
                await asyncio.sleep(max(0.0, started + n * batch / rate - time.perf_counter()))
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2)
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
        committed = n * batch
        delivered = sum(len(a) for a in arrived)
        print(
            f"{streams} streams x {devices_per_stream} devices, two processes (SQLite, Redis), "
            f"batches of {batch} for {elapsed:.1f} s"
        )
        print(f"committed {committed / elapsed:8.0f} messages/s   delivered {delivered / elapsed:8.0f} events/s")
        for s_index, name in ((0, "same process"), (1, "other process")):
            events = [e for s in range(s_index, streams, 2) for e in arrived[s]]
            expected = sum(1 for m in range(committed) if (m % len(ids)) // devices_per_stream % 2 == s_index)
            _latency(name, sent, events, expected)
        if ingest_cost:
            await _ingest_cost(servers, tenant, ids, streams, devices_per_stream, seconds)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--devices", type=int, default=20, help="devices per stream")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="messages per second")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--ingest-cost", action="store_true", help="also measure what the streams cost ingest")
    args = parser.parse_args()
    asyncio.run(main(args.streams, args.devices, args.seconds, args.rate, args.batch, args.ingest_cost))

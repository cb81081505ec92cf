"""`telemetra simulate`: register devices, send at a steady rate through one transport, report."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from telemetra.nats_connection import nats_tls_from
from telemetra.sim.profiles import DEVICE_TYPES, DeviceState, make_message
from telemetra.sim.senders import HttpSender, MqttSender, NatsSender, Sender

logger = logging.getLogger(__name__)
__all__ = ["SimConfig", "SimReport", "register_devices", "run_simulation"]

TICK_S = 0.02


@dataclass(frozen=True)
class SimConfig:
    devices: int
    rate: float  # messages per second over all devices; 0 = as fast as acknowledgements allow
    via: str
    profile: str
    url: str
    tenant_key: str
    duration_s: float | None = None
    count: int | None = None
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    nats_url: str = "nats://127.0.0.1:4222"
    prefix: str = "sim"  # a later run with the same prefix reuses the devices (``register_devices``)
    concurrency: int = 64
    seed: int = 1
    # A CA to verify the broker with, and a client certificate, for MQTT and NATS over TLS.
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass
class SimReport:
    devices: int = 0
    sent: int = 0
    acked: int = 0
    failed: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies_ms)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)) if lat else (lambda q: None)
        return {
            "devices": self.devices,
            "sent": self.sent,
            "acked": self.acked,
            "failed": dict(self.failed),
            "elapsed_s": round(self.elapsed_s, 2),
            "rate_msg_s": round(self.acked / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "ack_latency_ms": {"p50": pick(0.5), "p99": pick(0.99)},
        }


async def register_devices(url: str, tenant_key: str, count: int, profile: str, prefix: str) -> list[tuple[str, str]]:
    """Register ``count`` devices with the tenant key, reusing those an earlier run registered (their key is
    rotated: the simulator is the device, and a key is never readable again); return (id, device key) pairs."""
    registered: list[tuple[str, str]] = []
    existing: list[str] = []
    headers = {"X-API-Key": tenant_key}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            device_id = f"{prefix}-{profile}-{i:06d}"
            async with sem:
                resp = await client.post(
                    "/api/v1/devices/register",
                    json={"id": device_id, "name": device_id, "device_type": DEVICE_TYPES[profile]},
                )
            if resp.status_code == 409:
                existing.append(device_id)
                return
            if resp.status_code != 201:
                raise RuntimeError(f"registering {device_id} failed: {resp.status_code} {resp.text[:200]}")
            registered.append((device_id, resp.json()["device"]["api_key"]))

        await asyncio.gather(*(one(i) for i in range(count)))
        if existing:
            registered += await _rotate_device_keys(client, sem, set(existing))
    return sorted(registered)


async def _rotate_device_keys(
    client: httpx.AsyncClient, sem: asyncio.Semaphore, wanted: set[str]
) -> list[tuple[str, str]]:
    """A fresh key for each of the ``wanted`` devices (its active key rotated, the old one revoked at once)."""
    key_ids: dict[str, int] = {}
    page = 1
    while True:
        resp = await client.get("/api/v1/keys", params={"kind": "device", "page": page, "per_page": 100})
        resp.raise_for_status()
        body = resp.json()
        for key in body["keys"]:
            if key["device_id"] in wanted and key["status"] == "active":
                key_ids[key["device_id"]] = key["id"]
        if page >= body["pagination"]["pages"]:
            break
        page += 1
    if missing := wanted - key_ids.keys():
        raise RuntimeError(f"{len(missing)} simulated device(s) have no active key to rotate, e.g. {min(missing)}")

    async def rotate(device_id: str, key_id: int) -> tuple[str, str]:
        async with sem:
            resp = await client.post(f"/api/v1/keys/{key_id}/rotate", json={"grace_s": 0})
        if resp.status_code != 201:
            raise RuntimeError(f"a new key for {device_id} failed: {resp.status_code} {resp.text[:200]}")
        return device_id, resp.json()["api_key"]

    return list(await asyncio.gather(*(rotate(d, k) for d, k in key_ids.items())))


async def _sender(config: SimConfig) -> Sender:
    if config.via == "http":
        return HttpSender(config.url, config.tenant_key, config.concurrency)
    if config.via == "mqtt":
        return await MqttSender.connect(
            config.mqtt_url, ca_file=config.ca_file, cert_file=config.cert_file, key_file=config.key_file
        )
    if config.via == "nats":
        return await NatsSender.connect(
            config.nats_url, nats_tls_from(config.nats_url, config.ca_file, config.cert_file, config.key_file)
        )
    raise ValueError(f"unknown transport '{config.via}': http, mqtt or nats")


async def run_simulation(config: SimConfig) -> SimReport:
    """Send until the duration or count is reached; every message is awaited until acknowledged."""
    devices = await register_devices(config.url, config.tenant_key, config.devices, config.profile, config.prefix)
    states = [DeviceState(index=i, device_id=d) for i, (d, _) in enumerate(devices)]
    keys = {d: k for d, k in devices}
    sender = await _sender(config)
    report = SimReport(devices=len(devices))
    rng = random.Random(config.seed)
    in_flight = asyncio.Semaphore(config.concurrency)
    tasks: set[asyncio.Task] = set()

    run = secrets.token_hex(4)  # sequences restart with each run, on reused devices: not replays of the last

    async def send_one(state: DeviceState) -> None:
        body = make_message(config.profile, state, datetime.now(timezone.utc), rng)
        body["msg_id"] = f"{run}-{body['msg_id']}"
        started = time.perf_counter()
        try:
            ok = await sender.send(state.device_id, keys[state.device_id] if config.via == "http" else None, body)
        except Exception as exc:
            ok = False
            report.failed[type(exc).__name__] += 1
        else:
            if not ok:
                report.failed["refused"] += 1
        if ok:
            report.acked += 1
            report.latencies_ms.append((time.perf_counter() - started) * 1000)
        in_flight.release()

    started = time.perf_counter()
    try:
        while True:
            elapsed = time.perf_counter() - started
            if config.duration_s is not None and elapsed >= config.duration_s:
                break
            if config.count is not None and report.sent >= config.count:
                break
            due = int(config.rate * elapsed) + 1 if config.rate > 0 else report.sent + config.concurrency
            if report.sent >= due:
                await asyncio.sleep(TICK_S)
                continue
            await in_flight.acquire()
            task = asyncio.get_running_loop().create_task(send_one(states[report.sent % len(states)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report.sent += 1
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        report.elapsed_s = time.perf_counter() - started
        await sender.close()
    return report

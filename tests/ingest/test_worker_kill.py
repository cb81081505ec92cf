"""A worker killed (SIGKILL) mid-load loses nothing that was acknowledged, and stores nothing twice: from MQTT and
from NATS JetStream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid

import nats
import nats.js.errors

from telemetra.registry.keys import new_key
from telemetra.store import NewDevice, store_from_url
from tests.brokers import start_mosquitto, start_nats
from tests.ingest.test_mqtt_source import publisher, wait_until

MESSAGES = 3000


MQTT_WORKER = {"TELEMETRA_MQTT_CLIENT_ID": "telemetra-kill-test"}
# A short ack_wait: JetStream hands the dead worker's unacknowledged messages out again after it.
NATS_WORKER = {"TELEMETRA_NATS_ACK_WAIT_S": "2", "TELEMETRA_NATS_FETCH_BATCH": "100"}


def _start_worker(database_url: str, source: str, broker_url: str, log, settings: dict[str, str]) -> subprocess.Popen:
    env = {
        **os.environ,
        "TELEMETRA_DATABASE_URL": database_url,
        "TELEMETRA_LOG_LEVEL": "INFO",
        "TELEMETRA_INGEST_MAX_BATCH_MESSAGES": "200",
        **settings,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "telemetra", "worker", "--source", source, f"--{source}", broker_url],
        env=env,
        stdout=log,
        stderr=log,
    )


async def test_sigkill_mid_load_loses_and_duplicates_nothing(database_url, tmp_path) -> None:
    broker = start_mosquitto(tmp_path)
    store, device = await _store_with_a_device(database_url)
    log = open(tmp_path / "worker.log", "ab")
    worker = _start_worker(database_url, "mqtt", f"mqtt://127.0.0.1:{broker.port}", log, MQTT_WORKER)
    pub = publisher(broker.port)
    try:

        async def count() -> int:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1]

        # Wait for the worker's subscription before the load (from then on its session keeps everything):
        # a probe repeated until it lands, stored once thanks to its msg_id.
        probe_topic = f"devices/{device.id}/telemetry"
        for _ in range(60):
            pub.publish(probe_topic, json.dumps({"probe": 1, "msg_id": "probe"}), qos=1).wait_for_publish(5)
            try:
                await wait_until(lambda: _ge(count, 1), timeout_s=0.5)
                break
            except AssertionError:
                continue

        infos = [
            pub.publish(probe_topic, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"}), qos=1) for i in range(MESSAGES)
        ]
        await wait_until(lambda: _ge(count, 300), timeout_s=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = await count()
        for info in infos:
            info.wait_for_publish(30)  # every message acknowledged by the broker
        assert killed_at < MESSAGES + 1, "the load finished before the kill; raise MESSAGES"
        worker = _start_worker(database_url, "mqtt", f"mqtt://127.0.0.1:{broker.port}", log, MQTT_WORKER)
        await wait_until(lambda: _ge(count, MESSAGES + 1), timeout_s=60)
        await asyncio.sleep(0.5)
        messages, total = await store.list_messages(device_pk=device.pk, limit=MESSAGES + 10)
        assert total == MESSAGES + 1
        assert sorted(m.data["n"] for m in messages if "n" in m.data) == list(range(MESSAGES))
    finally:
        pub.loop_stop()
        pub.disconnect()
        _stop(worker)
        log.close()
        broker.stop()
        await store.close()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert "worker stopped" in (tmp_path / "worker.log").read_text()


async def _store_with_a_device(database_url: str):
    store = store_from_url(database_url)
    await store.open()
    tenant = await store.create_tenant("acme")
    key, _ = new_key("device", tenant_id=tenant.id)
    device = await store.create_device(NewDevice(id=f"dev-{uuid.uuid4().hex[:6]}", tenant_id=tenant.id, name="d"), key)
    return store, device


async def _ge(count, n: int) -> bool:
    return await count() >= n


async def test_sigkill_mid_load_loses_and_duplicates_nothing_from_jetstream(database_url, tmp_path) -> None:
    server = start_nats(tmp_path)
    store, device = await _store_with_a_device(database_url)
    log = open(tmp_path / "worker.log", "ab")
    worker = _start_worker(database_url, "nats", f"nats://127.0.0.1:{server.port}", log, NATS_WORKER)
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}")
    try:

        async def count() -> int:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1]

        js = nc.jetstream()
        await wait_until(lambda: _stream_exists(js), timeout_s=30)  # the worker made the stream
        published = asyncio.get_running_loop().create_task(_publish_all(js, f"telemetry.{device.id}"))
        await wait_until(lambda: _ge(count, 300), timeout_s=30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        killed_at = await count()
        assert await published == MESSAGES  # every message acknowledged by JetStream: stored in the stream
        assert killed_at < MESSAGES, "the load finished before the kill; raise MESSAGES"
        worker = _start_worker(database_url, "nats", f"nats://127.0.0.1:{server.port}", log, NATS_WORKER)
        await wait_until(lambda: _ge(count, MESSAGES), timeout_s=60)
        await asyncio.sleep(0.5)
        messages, total = await store.list_messages(device_pk=device.pk, limit=MESSAGES + 10)
        assert total == MESSAGES
        assert sorted(m.data["n"] for m in messages) == list(range(MESSAGES))
    finally:
        await nc.close()
        _stop(worker)
        log.close()
        server.stop()
        await store.close()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert "worker stopped" in (tmp_path / "worker.log").read_text()


def _stop(worker: subprocess.Popen) -> None:
    """SIGTERM: a worker commits and acknowledges what it holds, then exits 0."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)


async def _stream_exists(js) -> bool:
    try:
        await js.stream_info("TELEMETRY")
        return True
    except nats.js.errors.NotFoundError:
        return False


async def _publish_all(js, subject: str) -> int:
    """Publish MESSAGES messages, each awaited until JetStream has stored it; return how many were."""
    for i in range(MESSAGES):
        await js.publish(subject, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"}).encode())
    return MESSAGES

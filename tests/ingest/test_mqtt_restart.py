"""The default MQTT setup on a real Mosquitto restarted under load: every message the broker acknowledged
(PUBACK) is stored, once. And a departed worker's session is retired with what it held stored."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetra.store import Store
from tests.brokers import restart_broker, start_mosquitto, start_persistent_mosquitto
from tests.ingest.test_mqtt_source import publish_all, publisher, wait_until
from tests.ingest.test_worker_kill import _stop, _store_with_a_device

RATE_PER_S = 1500  # enough that the worker's reconnection delay (1 s at least) leaves many messages in between
WINDOW = 50  # publications in flight at once
PUBACK_WAIT_S = 2.0
STORED_BEFORE_RESTART = 500


class AckedPublisher:
    """Publishes ``{"data": {"n": i}, "msg_id": "m<i>"}`` for i = 0, 1, ... at QoS 1, each again until the broker
    acknowledges it (PUBACK); across a broker restart it reconnects at once. ``acked`` holds every i the broker
    acknowledged: a repeat is harmless, its msg_id makes it a duplicate."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic, self.acked, self.error = topic, set(), None
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.2)  # always faster back than the worker
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._finish = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acked-publisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            next_i, retry = 0, []
            while retry or not self._finish.is_set():
                started = time.monotonic()
                batch, retry = retry, []
                if not self._finish.is_set():
                    fresh = WINDOW - len(batch)
                    batch += range(next_i, next_i + fresh)
                    next_i += fresh
                infos = [
                    (i, self.client.publish(self.topic, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"}), qos=1))
                    for i in batch
                ]
                deadline = time.monotonic() + PUBACK_WAIT_S
                for i, info in infos:
                    try:
                        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                        published = info.is_published()
                    except (RuntimeError, ValueError):  # not connected (both calls say so): published again below
                        published = False
                    if published:
                        self.acked.add(i)
                    else:
                        retry.append(i)
                time.sleep(max(0.0, started + len(batch) / RATE_PER_S - time.monotonic()) if not retry else 0.05)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout_s: float = 30.0) -> set[int]:
        """Stop taking new numbers, get a PUBACK for every one published, and return them all."""
        self._finish.set()
        self._thread.join(timeout_s)
        self.client.loop_stop()
        self.client.disconnect()
        assert not self._thread.is_alive(), "publications still unacknowledged"
        assert self.error is None, self.error
        return set(self.acked)


def _start_worker(database_url: str, broker_port: int, log, settings: dict[str, str]) -> subprocess.Popen:
    """`telemetra worker --source mqtt` with the default settings, except ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TELEMETRA_")}
    env.update({"TELEMETRA_DATABASE_URL": database_url, "TELEMETRA_LOG_LEVEL": "INFO", **settings})
    return subprocess.Popen(
        [sys.executable, "-m", "telemetra", "worker", "--source", "mqtt", "--mqtt", f"mqtt://127.0.0.1:{broker_port}"],
        env=env,
        stdout=log,
        stderr=log,
    )


async def _numbers_stored(store: Store, device_pk: int) -> list[int]:
    messages, _ = await store.list_messages(device_pk=device_pk, limit=100_000)
    return sorted(m.data["n"] for m in messages if "n" in m.data)


async def _wait_for_subscription(store: Store, device, port: int) -> None:
    """Publish a probe until the worker stores it: from then on its session is the broker's to keep."""
    pub = publisher(port)
    try:
        for _ in range(100):
            publish_all(
                pub, [(f"devices/{device.id}/telemetry", json.dumps({"data": {"probe": 1}, "msg_id": "probe"}))]
            )
            try:
                await wait_until(lambda: _has_messages(store, device.pk, 1), timeout_s=0.3)
                return
            except AssertionError:
                continue
        raise AssertionError("the worker never subscribed")
    finally:
        pub.loop_stop()
        pub.disconnect()


async def _has_messages(store: Store, device_pk: int, n: int) -> bool:
    return (await store.list_messages(device_pk=device_pk, limit=1))[1] >= n


async def restart_under_load(database_url: str, tmp_path, settings: dict[str, str]) -> tuple[set[int], list[int]]:
    """Run a worker, restart its broker under load, and return (numbers acknowledged, numbers stored)."""
    broker = start_persistent_mosquitto(tmp_path)
    store, device = await _store_with_a_device(database_url)
    log = open(tmp_path / "worker.log", "ab")
    worker = _start_worker(database_url, broker.port, log, settings)
    load = None
    try:
        await _wait_for_subscription(store, device, broker.port)
        load = AckedPublisher(broker.port, f"devices/{device.id}/telemetry")
        await wait_until(lambda: _has_messages(store, device.pk, STORED_BEFORE_RESTART), timeout_s=20)
        broker = await asyncio.to_thread(restart_broker, broker)
        restarted_at = len(load.acked)
        await wait_until(lambda: _acked_past(load, restarted_at + 2 * RATE_PER_S), timeout_s=20)  # ~2 s more
        acked = await asyncio.to_thread(load.finish)
        load = None
        await _wait_while_storing(store, device.pk, len(acked) + 1)
        await asyncio.sleep(0.5)  # a duplicate would land within this
        return acked, await _numbers_stored(store, device.pk)
    finally:
        try:
            if load is not None:
                load.finish()  # raises when the publisher failed: the rest is still cleaned up
        finally:
            _stop(worker)
            log.close()
            broker.stop()
            await store.close()


async def _wait_while_storing(store: Store, device_pk: int, n: int, stall_s: float = 10.0) -> None:
    """Return once ``n`` messages are stored, or when none more came for ``stall_s`` (what is lost is lost;
    a slow machine only takes longer)."""
    loop = asyncio.get_running_loop()
    last, since = -1, loop.time()
    while (count := (await store.list_messages(device_pk=device_pk, limit=1))[1]) < n:
        if count > last:
            last, since = count, loop.time()
        elif loop.time() - since > stall_s:
            return
        await asyncio.sleep(0.1)


async def _acked_past(load: AckedPublisher, n: int) -> bool:
    return len(load.acked) >= n


async def test_broker_restart_under_load_loses_nothing_it_acknowledged(sqlite_url, tmp_path) -> None:
    """With the defaults (a plain subscription, a persistent session under a fixed client id), what devices
    publish while the broker restarts and before the worker is back is queued for its session. With a share
    group (the former default) Mosquitto 2.0 loses it: shared subscriptions are not in its persistence file."""
    acked, stored = await restart_under_load(sqlite_url, tmp_path, {})
    missing = acked - set(stored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages lost ({min(missing)}..{max(missing)})"
    assert stored == sorted(acked), "some stored twice, or stored without an acknowledgement"
    assert "session present: True" in (tmp_path / "worker.log").read_text()  # it was the session that kept them


def _stranded_member(port: int, client_id: str, group: str) -> None:
    """Leave a persistent session in ``group`` with nobody behind it: a worker that is gone."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(f"$share/{group}/devices/+/telemetry", qos=1)
    assert subscribed.wait(5)
    client.disconnect()
    client.loop_stop()


def _session_present(port: int, client_id: str) -> bool:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0  # look, and leave nothing behind
    answer: list[bool] = []
    connected = threading.Event()
    client.on_connect = lambda _c, _u, flags, _rc, _p: (answer.append(flags.session_present), connected.set())
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    assert connected.wait(5)
    client.disconnect()
    client.loop_stop()
    return answer[0]


def _retire(database_url: str, port: int, client_id: str, *options: str) -> dict:
    env = {name: value for name, value in os.environ.items() if not name.startswith("TELEMETRA_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "telemetra",
            "mqtt",
            "retire-client",
            "--client-id",
            client_id,
            "--mqtt",
            f"mqtt://127.0.0.1:{port}",
            "--quiet-s",
            "1",
            "--json",
            *options,
        ],
        env={**env, "TELEMETRA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


async def test_retiring_a_departed_share_member_stores_its_share_and_ends_its_session(sqlite_url, tmp_path) -> None:
    broker = start_mosquitto(tmp_path)
    store, device = await _store_with_a_device(sqlite_url)
    topic = f"devices/{device.id}/telemetry"
    _stranded_member(broker.port, "telemetra-mqtt-1", "telemetra")
    log = open(tmp_path / "worker.log", "ab")
    worker = _start_worker(
        sqlite_url,
        broker.port,
        log,
        {"TELEMETRA_MQTT_SHARED_GROUP": "telemetra", "TELEMETRA_MQTT_CLIENT_ID": "telemetra-mqtt-0"},
    )
    pub = publisher(broker.port)
    try:
        await _wait_for_subscription(store, device, broker.port)
        publish_all(pub, [(topic, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"})) for i in range(200)])
        retired = _retire(sqlite_url, broker.port, "telemetra-mqtt-1")
        assert retired["session_present"] is True and retired["stored"] >= 50  # about half went to it
        assert not _session_present(broker.port, "telemetra-mqtt-1")
        publish_all(pub, [(topic, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"})) for i in range(200, 300)])
        await wait_until(lambda: _has_messages(store, device.pk, 301), timeout_s=20)
        await asyncio.sleep(0.3)
        assert await _numbers_stored(store, device.pk) == list(range(300))  # all of it, once: nothing stranded
    finally:
        pub.loop_stop()
        pub.disconnect()
        _stop(worker)
        log.close()
        broker.stop()
        await store.close()


async def test_retiring_with_discard_ends_the_session_and_drops_its_queue(sqlite_url, tmp_path) -> None:
    broker = start_mosquitto(tmp_path)
    store, device = await _store_with_a_device(sqlite_url)
    _stranded_member(broker.port, "telemetra-old", "telemetra")
    pub = publisher(broker.port)
    try:
        publish_all(pub, [(f"devices/{device.id}/telemetry", json.dumps({"data": {"n": i}})) for i in range(10)])
        retired = _retire(sqlite_url, broker.port, "telemetra-old", "--discard")
        assert retired["stored"] == 0 and retired["discarded"] is True
        assert not _session_present(broker.port, "telemetra-old")
        assert await _numbers_stored(store, device.pk) == []
    finally:
        pub.loop_stop()
        pub.disconnect()
        broker.stop()
        await store.close()

"""The MQTT source on a real Mosquitto: it commits what it acknowledges, and drops what it cannot store."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.brokers import MQTT_URL, OwnProcess, require_port, start_mosquitto


def publisher(port: int = 1883, client_id: str | None = None) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"pub-{uuid.uuid4().hex[:8]}")
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(5), "publisher did not connect"
    return client


def publish_all(client: paho.Client, items: list[tuple[str, bytes | str]], qos: int = 1) -> None:
    infos = [client.publish(topic, payload, qos=qos) for topic, payload in items]
    for info in infos:
        info.wait_for_publish(10)


async def wait_until(predicate, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def mqtt_app(settings: Settings, store):
    require_port(1883, "Mosquitto")
    settings.mqtt_url = MQTT_URL
    settings.mqtt_client_id = f"telemetra-test-{uuid.uuid4().hex[:8]}"
    settings.mqtt_shared_group = f"g{uuid.uuid4().hex[:8]}"  # our own group: no other test takes our messages
    settings.mqtt_session_expiry_s = 30  # leave nothing behind on the shared broker
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        await app.state.services.keys.ensure_admin_key(settings.admin_key)
        yield app


async def test_mqtt_messages_are_committed(mqtt_app, store) -> None:
    services = mqtt_app.state.services
    tenant, _, _ = await services.tenants.create("acme")
    device, _ = await services.devices.register(tenant.id, name="boiler", device_id=f"boiler-{uuid.uuid4().hex[:6]}")
    pub = publisher()
    try:
        topic = f"devices/{device.id}/telemetry"
        good = [
            (topic, json.dumps({"data": {"t": i}, "msg_id": f"m{i}", "timestamp": 1795341600 + i})) for i in range(300)
        ]
        bad = [
            (topic, "not json"),
            (topic, json.dumps({"data": {"t": float("inf")}}).replace("Infinity", "1e999")),
            (f"devices/nobody-{uuid.uuid4().hex[:6]}/telemetry", json.dumps({"t": 1})),
        ]
        publish_all(pub, bad + good + [(topic, good[0][1])])  # and one replay

        async def all_in() -> bool:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1] >= 300

        await wait_until(all_in)
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would land within this
        messages, total = await store.list_messages(device_pk=device.pk, limit=1000)
        assert total == 300 and sorted(m.data["t"] for m in messages) == list(range(300))
        latest = await store.latest_values(device.pk)
        assert latest["t"][1] == 299.0
        metrics = httpx.AsyncClient(transport=httpx.ASGITransport(app=mqtt_app), base_url="http://t")
        text = (await metrics.get("/metrics")).text
        assert 'telemetra_ingest_rejected_total{reason="unknown_device",source="mqtt"}' in text
        assert 'telemetra_ingest_rejected_total{reason="invalid_json",source="mqtt"}' in text
        assert 'telemetra_ingest_messages_total{outcome="duplicate",source="mqtt"}' in text
        await metrics.aclose()
    finally:
        pub.loop_stop()
        pub.disconnect()


async def test_state_topic_records_connection(mqtt_app, store) -> None:
    services = mqtt_app.state.services
    tenant, _, _ = await services.tenants.create("acme")
    device, _ = await services.devices.register(tenant.id, name="meter", device_id=f"meter-{uuid.uuid4().hex[:6]}")
    pub = publisher()
    try:
        publish_all(pub, [(f"devices/{device.id}/state", "online")])

        async def online() -> bool:
            return (await store.get_device(device.id)).attributes.get("connection") == "online"

        await wait_until(online)
        publish_all(pub, [(f"devices/{device.id}/state", "offline")])

        async def offline() -> bool:
            return (await store.get_device(device.id)).attributes.get("connection") == "offline"

        await wait_until(offline)
    finally:
        pub.loop_stop()
        pub.disconnect()


async def test_the_source_reconnects_when_its_broker_comes_back(settings: Settings, store, tmp_path) -> None:
    """The source drives paho from the event loop, where paho does not reconnect by itself: a broker
    restarted on the same port is found again, and what devices publish to it is committed."""
    broker = start_mosquitto(tmp_path)
    settings.mqtt_url = f"mqtt://127.0.0.1:{broker.port}"
    settings.mqtt_client_id = f"telemetra-test-{uuid.uuid4().hex[:8]}"
    app = create_app(settings, store)
    try:
        async with app.router.lifespan_context(app):
            services = app.state.services
            tenant, _, _ = await services.tenants.create("acme")
            device, _ = await services.devices.register(
                tenant.id, name="boiler", device_id=f"boiler-{uuid.uuid4().hex[:6]}"
            )
            topic = f"devices/{device.id}/telemetry"

            async def publish_until_stored(value: int) -> None:
                """Publish until the source has taken one: a broker without persistence drops what comes
                before the source has subscribed again."""
                pub = publisher(broker.port)
                try:
                    for attempt in range(200):
                        body = json.dumps({"data": {"t": value}, "msg_id": f"v{value}-{attempt}"})
                        publish_all(pub, [(topic, body)])
                        latest = await store.latest_values(device.pk)
                        if latest.get("t", (None, None))[1] == float(value):
                            return
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"value {value} never committed")
                finally:
                    pub.loop_stop()
                    pub.disconnect()

            await publish_until_stored(1)
            broker.stop()
            await asyncio.sleep(0.5)  # the source sees the connection go, and starts retrying
            broker = OwnProcess(broker.args, broker.port, tmp_path / "mosquitto-again.log")
            await publish_until_stored(2)
    finally:
        broker.stop()

"""Over MQTT and NATS JetStream, a message that can never be stored (refused by validation, or by the database
itself) is acknowledged, counted once with its reason and logged, never retried for ever: the messages
around it, and after it, are all stored (Mosquitto on :1883, a nats-server of the test's own)."""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import pytest
from prometheus_client import REGISTRY

from telemetra.api.app import create_app
from telemetra.ingest.device_cache import DeviceCache
from telemetra.ingest.runner import payload_limits
from telemetra.ingest.sources.nats import NatsConfig, NatsSource
from telemetra.runtime import build_services
from telemetra.settings import Settings
from tests.brokers import MQTT_URL, require_port, start_nats
from tests.ingest.test_mqtt_source import publish_all, publisher, wait_until
from tests.poison import PoisonedStore

WINDOW = 5  # the MQTT in-flight window: fewer than the poisons sent
POISONS = 8
GOOD = 40


def _rejected(source: str, reason: str) -> float:
    return REGISTRY.get_sample_value("telemetra_ingest_rejected_total", {"source": source, "reason": reason}) or 0.0


def _rejections(source: str) -> dict[str, float]:
    return {reason: _rejected(source, reason) for reason in ("unstorable_message", "invalid_json", "invalid_data")}


async def _stored_values(store, device) -> list[int]:
    messages, _ = await store.list_messages(device_pk=device.pk, limit=1000)
    return sorted(m.data["n"] for m in messages)


def _bodies() -> list[bytes]:
    """Poisons interleaved with good messages, a bad JSON and an empty message, then more good ones."""
    bodies = []
    for i in range(POISONS):
        bodies += [json.dumps({"data": {"poison": i}}).encode(), json.dumps({"data": {"n": i}}).encode()]
    bodies += [b"not json", json.dumps({"data": {}}).encode()]
    bodies += [json.dumps({"data": {"n": i}}).encode() for i in range(POISONS, GOOD)]
    return bodies


@pytest.fixture
async def mqtt_poison_app(settings: Settings, store):
    require_port(1883, "Mosquitto")
    settings.mqtt_url = MQTT_URL
    settings.mqtt_client_id = f"telemetra-test-{uuid.uuid4().hex[:8]}"
    settings.mqtt_shared_group = f"g{uuid.uuid4().hex[:8]}"  # our own group: no other test takes our messages
    settings.mqtt_session_expiry_s = 30
    settings.mqtt_receive_maximum = WINDOW
    app = create_app(settings, PoisonedStore(store))
    async with app.router.lifespan_context(app):
        yield app


async def test_mqtt_acks_and_counts_what_can_never_be_stored_and_the_rest_flows(mqtt_poison_app, store) -> None:
    services = mqtt_poison_app.state.services
    tenant, _, _ = await services.tenants.create(f"acme-{uuid.uuid4().hex[:6]}")
    device, _ = await services.devices.register(tenant.id, name="d", device_id=f"dev-{uuid.uuid4().hex[:6]}")
    before = _rejections("mqtt")
    pub = publisher()
    try:
        topic = f"devices/{device.id}/telemetry"
        publish_all(pub, [(topic, body) for body in _bodies()])

        async def all_in() -> bool:
            return len(await _stored_values(store, device)) >= GOOD

        await wait_until(all_in)  # past the window: the poisons were acknowledged, not held
        await asyncio.sleep(0.5)  # anything counted or stored twice would show within this
        assert await _stored_values(store, device) == list(range(GOOD))
        after = _rejections("mqtt")
        assert {r: after[r] - before[r] for r in after} == {
            "unstorable_message": POISONS,
            "invalid_json": 1,
            "invalid_data": 1,
        }
    finally:
        pub.loop_stop()
        pub.disconnect()


@pytest.fixture
def nats_server(tmp_path):
    server = start_nats(tmp_path)
    yield server
    server.stop()


async def test_nats_terminates_and_counts_what_can_never_be_stored(settings, store, nats_server) -> None:
    url = f"nats://127.0.0.1:{nats_server.port}"
    poisoned = PoisonedStore(store)
    services = build_services(settings, poisoned)
    services.pipeline.start()
    source = NatsSource(
        NatsConfig(url=url, fetch_batch=10),
        services.telemetry,
        services.pipeline,
        DeviceCache(poisoned),
        limits=payload_limits(settings),
    )
    await source.start()
    tenant, _, _ = await services.tenants.create(f"acme-{uuid.uuid4().hex[:6]}")
    device, _ = await services.devices.register(tenant.id, name="d", device_id=f"dev-{uuid.uuid4().hex[:6]}")
    before = _rejections("nats")
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for body in _bodies():
            await js.publish(f"telemetry.{device.id}", body)

        async def all_done() -> bool:
            info = await js.consumer_info("TELEMETRY", "telemetra")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_until(all_done)  # every message acknowledged or terminated: none left to redeliver
        await asyncio.sleep(0.5)
        info = await js.consumer_info("TELEMETRY", "telemetra")
        assert info.num_redelivered == 0 and info.num_ack_pending == 0
        assert await _stored_values(store, device) == list(range(GOOD))
        after = _rejections("nats")
        assert {r: after[r] - before[r] for r in after} == {
            "unstorable_message": POISONS,
            "invalid_json": 1,
            "invalid_data": 1,
        }
    finally:
        await source.stop()
        await services.pipeline.stop()
        await nc.close()

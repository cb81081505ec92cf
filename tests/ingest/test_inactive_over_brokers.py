"""Over MQTT (Mosquitto on :1883) and NATS JetStream (a nats-server of the test's own), an inactive device's
messages are dropped for good: acknowledged (NATS: terminated), counted in telemetra_ingest_rejected_total
with reason device_inactive, never stored, never redelivered; an active device's messages around them flow."""

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

MESSAGES = 10


def _rejected(source: str) -> float:
    labels = {"source": source, "reason": "device_inactive"}
    return REGISTRY.get_sample_value("telemetra_ingest_rejected_total", labels) or 0.0


async def _devices(services, store):
    tenant, _, _ = await services.tenants.create(f"acme-{uuid.uuid4().hex[:6]}")
    idle, _ = await services.devices.register(tenant.id, name="idle", device_id=f"idle-{uuid.uuid4().hex[:6]}")
    live, _ = await services.devices.register(tenant.id, name="live", device_id=f"live-{uuid.uuid4().hex[:6]}")
    await store.update_device(idle.pk, {"status": "inactive"})
    return idle, live


async def _stored(store, device) -> int:
    return (await store.list_messages(device_pk=device.pk, limit=1))[1]


def _bodies() -> list[bytes]:
    return [json.dumps({"data": {"n": i}}).encode() for i in range(MESSAGES)]


@pytest.fixture
async def mqtt_app(settings: Settings, store):
    require_port(1883, "Mosquitto")
    settings.mqtt_url = MQTT_URL
    settings.mqtt_client_id = f"telemetra-test-{uuid.uuid4().hex[:8]}"
    settings.mqtt_shared_group = f"g{uuid.uuid4().hex[:8]}"  # our own group: no other test takes our messages
    settings.mqtt_session_expiry_s = 30
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        yield app


async def test_mqtt_drops_and_counts_an_inactive_devices_messages(mqtt_app, store) -> None:
    idle, live = await _devices(mqtt_app.state.services, store)
    before = _rejected("mqtt")
    pub = publisher()
    try:
        items = []
        for body in _bodies():  # interleaved: the refusals hold nothing up
            items += [(f"devices/{idle.id}/telemetry", body), (f"devices/{live.id}/telemetry", body)]
        publish_all(pub, items)

        async def all_counted() -> bool:
            return await _stored(store, live) == MESSAGES and _rejected("mqtt") - before == MESSAGES

        await wait_until(all_counted)
        await asyncio.sleep(0.3)  # a redelivery or a late write would show within this
        assert await _stored(store, idle) == 0 and _rejected("mqtt") - before == MESSAGES
    finally:
        pub.loop_stop()
        pub.disconnect()


@pytest.fixture
def nats_server(tmp_path):
    server = start_nats(tmp_path)
    yield server
    server.stop()


async def test_nats_terminates_and_counts_an_inactive_devices_messages(settings, store, nats_server) -> None:
    url = f"nats://127.0.0.1:{nats_server.port}"
    services = build_services(settings, store)
    services.pipeline.start()
    source = NatsSource(
        NatsConfig(url=url, fetch_batch=10),
        services.telemetry,
        services.pipeline,
        DeviceCache(store),
        limits=payload_limits(settings),
    )
    await source.start()
    idle, live = await _devices(services, store)
    before = _rejected("nats")
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for body in _bodies():
            await js.publish(f"telemetry.{idle.id}", body)
            await js.publish(f"telemetry.{live.id}", body)

        async def all_done() -> bool:
            info = await js.consumer_info("TELEMETRY", "telemetra")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_until(all_done)
        await asyncio.sleep(0.3)
        info = await js.consumer_info("TELEMETRY", "telemetra")
        assert info.num_redelivered == 0 and info.num_ack_pending == 0
        assert await _stored(store, live) == MESSAGES and await _stored(store, idle) == 0
        assert _rejected("nats") - before == MESSAGES
    finally:
        await source.stop()
        await services.pipeline.stop()
        await nc.close()

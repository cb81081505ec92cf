"""The NATS JetStream source on a real nats-server (our own, on a free port): commit, then ack."""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
import pytest

from telemetra.ingest.device_cache import DeviceCache
from telemetra.ingest.runner import payload_limits
from telemetra.ingest.sources.nats import NatsConfig, NatsSource, device_from_subject
from telemetra.runtime import build_services
from tests.brokers import free_port, start_nats
from tests.ingest.test_mqtt_source import publish_all, publisher, wait_until


def test_subjects_name_devices() -> None:
    assert device_from_subject("telemetry.boiler-1") == "boiler-1"
    assert device_from_subject("devices.boiler-1.telemetry") == "boiler-1"
    assert device_from_subject("devices..telemetry") is None
    assert device_from_subject("other.x") is None


@pytest.fixture
def nats_server(tmp_path):
    server = start_nats(tmp_path, mqtt_port=free_port())
    yield server
    server.stop()


async def _running_source(settings, store, url: str) -> tuple:
    services = build_services(settings, store)
    services.pipeline.start()
    source = NatsSource(
        NatsConfig(url=url, fetch_batch=100),
        services.telemetry,
        services.pipeline,
        DeviceCache(store),
        limits=payload_limits(settings),
    )
    await source.start()
    return services, source


async def _device(store, services):
    tenant, _, _ = await services.tenants.create(f"t-{uuid.uuid4().hex[:6]}")
    device, _ = await services.devices.register(tenant.id, name="d", device_id=f"dev-{uuid.uuid4().hex[:6]}")
    return device


async def test_nats_messages_are_committed_then_acked(settings, store, nats_server) -> None:
    url = f"nats://127.0.0.1:{nats_server.port}"
    services, source = await _running_source(settings, store, url)
    device = await _device(store, services)
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for i in range(150):
            subject = f"telemetry.{device.id}" if i % 2 else f"devices.{device.id}.telemetry"
            await js.publish(subject, json.dumps({"data": {"n": i}, "msg_id": f"m{i}"}).encode())
        await js.publish(f"telemetry.{device.id}", b"{broken")
        await js.publish("telemetry.nobody-here", json.dumps({"t": 1}).encode())

        async def all_in() -> bool:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1] >= 150

        await wait_until(all_in)

        async def all_acked() -> bool:
            info = await js.consumer_info("TELEMETRY", "telemetra")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await wait_until(all_acked)
        assert (await store.list_messages(device_pk=device.pk, limit=1))[1] == 150
    finally:
        await source.stop()
        await services.pipeline.stop()
        await nc.close()


async def test_two_workers_share_one_durable_consumer(settings, store, nats_server) -> None:
    url = f"nats://127.0.0.1:{nats_server.port}"
    first, source_a = await _running_source(settings, store, url)
    second, source_b = await _running_source(settings, store, url)
    device = await _device(store, first)
    counts = {"a": 0, "b": 0}

    def counter(name):
        async def consume(batch):
            counts[name] += len(batch)

        return consume

    first.pipeline.add_consumer(counter("a"))
    second.pipeline.add_consumer(counter("b"))
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for i in range(2000):
            await js.publish(f"telemetry.{device.id}", json.dumps({"data": {"n": i}, "msg_id": f"m{i}"}).encode())

        async def all_in() -> bool:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1] >= 2000

        await wait_until(all_in, timeout_s=60)
        await asyncio.sleep(0.3)
        assert (await store.list_messages(device_pk=device.pk, limit=1))[1] == 2000
        assert counts["a"] + counts["b"] == 2000 and counts["a"] > 0 and counts["b"] > 0
    finally:
        for source, services in ((source_a, first), (source_b, second)):
            await source.stop()
            await services.pipeline.stop()
        await nc.close()


async def test_nats_mqtt_gateway_feeds_the_stream(settings, store, tmp_path) -> None:
    mqtt_port = free_port()
    server = start_nats(tmp_path, mqtt_port=mqtt_port)
    url = f"nats://127.0.0.1:{server.port}"
    services, source = await _running_source(settings, store, url)
    device = await _device(store, services)
    pub = publisher(mqtt_port)
    try:
        publish_all(
            pub,
            [
                (f"devices/{device.id}/telemetry", json.dumps({"temperature": 20 + i, "msg_id": f"g{i}"}))
                for i in range(20)
            ],
        )

        async def all_in() -> bool:
            return (await store.list_messages(device_pk=device.pk, limit=1))[1] >= 20

        await wait_until(all_in)
        latest = await store.latest_values(device.pk)
        assert latest["temperature"][1] == 39.0
    finally:
        pub.loop_stop()
        pub.disconnect()
        await source.stop()
        await services.pipeline.stop()
        server.stop()

"""Broker payloads are read within the settings HTTP reads (TELEMETRA_MAX_JSON_DEPTH, TELEMETRA_MAX_BODY_BYTES):
a changed depth reaches the MQTT and NATS sources the runtime builds, on real brokers."""

from __future__ import annotations

import json
import uuid

import nats
import pytest

from telemetra.ingest.runner import build_sources
from telemetra.runtime import build_services
from telemetra.settings import Settings
from tests.brokers import MQTT_URL, require_port, start_nats
from tests.ingest.test_mqtt_source import publish_all, publisher, wait_until

MAX_DEPTH = 10  # above the default of 8: a payload of depth 9 passes only when the setting is read


def _nested(depth: int, msg_id: str) -> str:
    """A message whose objects nest ``depth`` deep (the message and its "data" count)."""
    value: object = 1
    for _ in range(depth - 2):
        value = {"a": value}
    return json.dumps({"data": {"tag": msg_id, "cfg": value}, "msg_id": msg_id})


@pytest.mark.parametrize("source", ["mqtt", "nats"])
async def test_a_changed_max_json_depth_applies_to_broker_payloads(
    settings: Settings, store, tmp_path, source: str
) -> None:
    settings.max_json_depth = MAX_DEPTH
    server = None
    if source == "mqtt":
        require_port(1883, "Mosquitto")
        settings.mqtt_url = MQTT_URL
        settings.mqtt_client_id = f"telemetra-test-{uuid.uuid4().hex[:8]}"
        settings.mqtt_shared_group = f"g{uuid.uuid4().hex[:8]}"  # our own group: no other test takes our messages
        settings.mqtt_session_expiry_s = 30  # leave nothing behind on the shared broker
    else:
        server = start_nats(tmp_path)
        settings.nats_url = f"nats://127.0.0.1:{server.port}"
    services = build_services(settings, store)
    tenant, _, _ = await services.tenants.create(f"t-{uuid.uuid4().hex[:6]}")
    device, _ = await services.devices.register(tenant.id, name="d", device_id=f"deep-{uuid.uuid4().hex[:6]}")
    services.pipeline.start()
    (reader,) = build_sources(settings, [source], telemetry=services.telemetry, pipeline=services.pipeline, store=store)
    await reader.start()
    payloads = [_nested(MAX_DEPTH - 1, "within"), _nested(MAX_DEPTH + 1, "beyond"), _nested(2, "last")]
    try:
        if source == "mqtt":
            pub = publisher()
            try:
                publish_all(pub, [(f"devices/{device.id}/telemetry", p) for p in payloads])
            finally:
                pub.loop_stop()
                pub.disconnect()
        else:
            nc = await nats.connect(settings.nats_url)
            try:
                for p in payloads:
                    await nc.jetstream().publish(f"telemetry.{device.id}", p.encode())
            finally:
                await nc.close()

        async def last_in() -> bool:
            messages, _ = await store.list_messages(device_pk=device.pk, limit=10)
            return any(m.data["tag"] == "last" for m in messages)

        await wait_until(last_in)
        messages, _ = await store.list_messages(device_pk=device.pk, limit=10)
        assert sorted(m.data["tag"] for m in messages) == ["last", "within"]  # "beyond" refused, as HTTP would
    finally:
        await reader.stop(5.0)
        await services.pipeline.stop()
        if server is not None:
            server.stop()

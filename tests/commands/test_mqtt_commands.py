"""Commands over a real Mosquitto: delivery and ack to a device on a real MQTT client, offline queueing and
expiry, a restart in between, and seed 001's POST /send on `send_command`."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.brokers import MQTT_URL, require_port
from tests.commands.mqtt_device import MqttDevice


async def wait_until(predicate, timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def mqtt_settings(settings: Settings) -> Settings:
    require_port(1883, "Mosquitto")
    group = f"g{uuid.uuid4().hex[:8]}"  # our own shared group: no other test takes our messages
    return settings.model_copy(
        update={
            "mqtt_url": MQTT_URL,
            "mqtt_client_id": f"telemetra-test-{group}",
            "mqtt_shared_group": group,
            "mqtt_session_expiry_s": 30,
            "command_expiry_check_s": 0.2,
        }
    )


@asynccontextmanager
async def running(settings: Settings, store=None):
    """An app with its broker source and command transport, and a client for it."""
    app = create_app(settings, store)
    async with app.router.lifespan_context(app):
        await app.state.services.keys.ensure_admin_key(settings.admin_key)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield app, client


@pytest.fixture
async def mqtt_client(settings, store):
    async with running(mqtt_settings(settings), store) as (app, client):
        yield app, client


async def _tenant_and_device(app, name: str = "boiler"):
    services = app.state.services
    tenant, _, key = await services.tenants.create(f"acme-{uuid.uuid4().hex[:6]}")
    device, _ = await services.devices.register(tenant.id, name=name, device_id=f"{name}-{uuid.uuid4().hex[:8]}")
    return {"X-API-Key": key}, device


async def _status(client, headers, device_id: str, command_id: str) -> str:
    resp = await client.get(f"/api/v1/devices/{device_id}/commands/{command_id}", headers=headers)
    return resp.json()["command"]["status"]


async def _wait_online(store, device_id: str) -> None:
    async def online() -> bool:
        return (await store.get_device(device_id)).attributes.get("connection") == "online"

    await wait_until(online)


async def test_a_command_reaches_a_device_and_its_ack_finishes_it(mqtt_client, store) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app)
    dev = MqttDevice(device.id)
    try:
        dev.say("online")
        await _wait_online(store, device.id)
        resp = await client.post(
            f"/api/v1/devices/{device.id}/commands",
            headers=headers,
            json={"name": "set_point", "params": {"celsius": 21.5}, "ttl_s": 60},
        )
        assert resp.status_code == 202
        command = resp.json()["command"]
        assert command["status"] == "sent" and command["transport"] == "mqtt"  # the broker took it
        topic, payload = await asyncio.to_thread(dev.next)
        assert topic == f"devices/{device.id}/commands"
        assert payload == {
            "id": command["id"],
            "name": "set_point",
            "params": {"celsius": 21.5},
            "expires_at": command["expires_at"],
        }

        dev.ack(command["id"], "received")
        await wait_until(lambda: _is(client, headers, device.id, command["id"], "delivered"))
        dev.ack(command["id"], "succeeded", {"celsius": 21.5})
        await wait_until(lambda: _is(client, headers, device.id, command["id"], "succeeded"))
        got = (await client.get(f"/api/v1/devices/{device.id}/commands/{command['id']}", headers=headers)).json()
        assert got["command"]["result"] == {"celsius": 21.5}
    finally:
        dev.close()


async def _is(client, headers, device_id, command_id, status) -> bool:
    return await _status(client, headers, device_id, command_id) == status


async def test_an_ack_for_another_devices_command_changes_nothing(mqtt_client, store) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app)
    _, other = await _tenant_and_device(app, "intruder")
    command = (
        await client.post(f"/api/v1/devices/{device.id}/commands", headers=headers, json={"name": "open"})
    ).json()["command"]
    intruder = MqttDevice(other.id, topics=(f"devices/{other.id}/commands",))
    try:
        intruder.ack(command["id"], "succeeded")  # on its own ack topic, naming a command not its own
        marker = (
            await client.post(f"/api/v1/devices/{device.id}/commands", headers=headers, json={"name": "marker"})
        ).json()["command"]
        intruder.publish(f"devices/{device.id}/commands/ack", {"id": marker["id"], "status": "received"})
        await wait_until(lambda: _is(client, headers, device.id, marker["id"], "delivered"))
        assert await _status(client, headers, device.id, command["id"]) == "queued"
    finally:
        intruder.close()


async def test_an_offline_device_gets_its_queued_commands_in_order_on_reconnect_never_expired_ones(
    mqtt_client, store
) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app)
    base = f"/api/v1/devices/{device.id}/commands"
    first = (await client.post(base, headers=headers, json={"name": "first", "ttl_s": 600})).json()["command"]
    short = (await client.post(base, headers=headers, json={"name": "short", "ttl_s": 1})).json()["command"]
    last = (await client.post(base, headers=headers, json={"name": "last", "ttl_s": 600})).json()["command"]
    assert {first["status"], short["status"], last["status"]} == {"queued"}  # nobody to send them to
    await wait_until(lambda: _is(client, headers, device.id, short["id"], "expired"))

    dev = MqttDevice(device.id)
    try:
        dev.say("online")
        received = [(await asyncio.to_thread(dev.next))[1]["id"] for _ in range(2)]
        assert received == [first["id"], last["id"]]
        assert await asyncio.to_thread(dev.nothing_more)
        assert await _status(client, headers, device.id, first["id"]) == "sent"
        assert await _status(client, headers, device.id, short["id"]) == "expired"
    finally:
        dev.close()


async def test_a_restart_loses_no_command(settings, store) -> None:
    configured = mqtt_settings(settings)
    async with running(configured) as (app, client):
        headers, device = await _tenant_and_device(app)
        command = (
            await client.post(
                f"/api/v1/devices/{device.id}/commands", headers=headers, json={"name": "update", "params": {"v": 2}}
            )
        ).json()["command"]
        assert command["status"] == "queued"
    async with running(configured) as (app, client):  # a new process on the same database
        assert await _status(client, headers, device.id, command["id"]) == "queued"
        dev = MqttDevice(device.id)
        try:
            dev.say("online")
            _, payload = await asyncio.to_thread(dev.next)
            assert payload["id"] == command["id"] and payload["params"] == {"v": 2}
            dev.ack(command["id"], "succeeded")
            await wait_until(lambda: _is(client, headers, device.id, command["id"], "succeeded"))
        finally:
            dev.close()


async def test_send_publishes_the_switch_order_on_send_command(mqtt_client, store) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app, "heater")
    gateway = MqttDevice(f"gateway-{uuid.uuid4().hex[:6]}", topics=("send_command",))
    try:
        resp = await client.post("/send", headers=headers, json={"device_id": device.id, "switch": True})
        assert resp.status_code == 200
        assert resp.json() == {"status": "command sent", "device_id": device.id, "switch": True}
        # Other tests on the shared broker may publish here too: take the first order for our device.
        while True:
            topic, payload = await asyncio.to_thread(gateway.next)
            if payload.get("device_id") == device.id:
                break
        assert topic == "send_command"
        assert payload == {"device_id": device.id, "devId": device.id, "switch": True}
        listing = (await client.get(f"/api/v1/devices/{device.id}/commands", headers=headers)).json()
        assert [(c["name"], c["params"], c["status"], c["transport"]) for c in listing["commands"]] == [
            ("switch", {"switch": True}, "sent", "send_command")
        ]
        # A gateway order is never resent on the device's own topic.
        dev = MqttDevice(device.id)
        try:
            dev.say("online")
            await _wait_online(store, device.id)
            assert await asyncio.to_thread(dev.nothing_more)
        finally:
            dev.close()
    finally:
        gateway.close()


async def test_desired_state_is_retained_for_a_device_that_subscribes_later(mqtt_client, store) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app)
    topic = f"devices/{device.id}/desired"
    resp = await client.put(f"/api/v1/devices/{device.id}/desired", headers=headers, json={"state": {"sampling_s": 30}})
    assert resp.status_code == 200
    dev = MqttDevice(device.id, topics=(topic,))  # subscribes after the publication
    try:
        got_topic, payload = await asyncio.to_thread(dev.next)
        assert got_topic == topic
        assert payload["version"] == 1 and payload["delta"] == {"sampling_s": 30}
    finally:
        dev.publish(topic, "")  # clear the retained message: the broker is shared
        dev.close()


async def test_online_while_the_state_says_so_offline_by_last_will(mqtt_client, store) -> None:
    app, client = mqtt_client
    headers, device = await _tenant_and_device(app)

    async def online() -> bool:
        resp = await client.get(f"/api/v1/devices/{device.id}", headers=headers)
        return resp.json()["device"]["is_online"]

    assert not await online()  # never heard of
    dev = MqttDevice(device.id)
    dev.say("online")
    await wait_until(online)
    dev.drop()  # no DISCONNECT: the broker sends its last will, "offline"

    async def offline() -> bool:
        return not await online()

    await wait_until(offline, timeout_s=30)

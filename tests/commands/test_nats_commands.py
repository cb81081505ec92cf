"""Commands over NATS (our own nats-server): `commands.{id}` to the device, `commands.{id}.ack` back."""

from __future__ import annotations

import json

import nats
import pytest

from telemetra.domain.timeparse import utcnow
from tests.brokers import start_nats
from tests.commands.test_mqtt_commands import _is, _tenant_and_device, running, wait_until


@pytest.fixture
def nats_url(tmp_path):
    server = start_nats(tmp_path)
    yield f"nats://127.0.0.1:{server.port}"
    server.stop()


async def test_a_command_reaches_a_nats_device_and_its_ack_finishes_it(settings, store, nats_url) -> None:
    configured = settings.model_copy(update={"nats_url": nats_url, "command_transport": "nats"})
    async with running(configured, store) as (app, client):
        headers, device = await _tenant_and_device(app)
        nc = await nats.connect(nats_url)
        try:
            inbox = await nc.subscribe(f"commands.{device.id}")
            base = f"/api/v1/devices/{device.id}/commands"
            queued = (await client.post(base, headers=headers, json={"name": "early"})).json()["command"]
            assert queued["status"] == "queued"  # never heard of: offline
            # Once heard of, the device is online: a new command sends every open one, in order.
            await app.state.services.store.update_device(device.pk, {"last_seen": utcnow()})
            command = (await client.post(base, headers=headers, json={"name": "reboot", "params": {"in_s": 1}})).json()[
                "command"
            ]
            assert command["status"] == "sent" and command["transport"] == "nats"
            first = json.loads((await inbox.next_msg(timeout=10)).data)
            second = json.loads((await inbox.next_msg(timeout=10)).data)
            assert [first["id"], second["id"]] == [queued["id"], command["id"]]
            assert second == {
                "id": command["id"],
                "name": "reboot",
                "params": {"in_s": 1},
                "expires_at": command["expires_at"],
            }
            await nc.publish(
                f"commands.{device.id}.ack",
                json.dumps({"id": command["id"], "status": "failed", "result": {"error": "busy"}}).encode(),
            )
            await nc.flush()
            await wait_until(lambda: _is(client, headers, device.id, command["id"], "failed"))
            got = (await client.get(f"{base}/{command['id']}", headers=headers)).json()["command"]
            assert got["result"] == {"error": "busy"}
        finally:
            await nc.close()

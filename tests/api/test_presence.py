"""Online status changes as events, on both backends: silence past offline_after, coming back, the MQTT
state; each announced once even by two monitors."""

from __future__ import annotations

import asyncio

import pytest

from telemetra.registry.presence import PresenceMonitor


@pytest.fixture
def settings(settings):
    # The app's own monitor must not tick during a test: the test's monitors claim the changes.
    return settings.model_copy(update={"presence_check_s": 3600})


async def test_status_changes_are_announced_once_whatever_the_number_of_monitors(
    app, client, make_tenant, make_device
) -> None:
    tenant = await make_tenant()
    quiet, chatty = await make_device(tenant), await make_device(tenant)
    for device in (quiet, chatty):
        resp = await client.put("/api/v1/devices/config", headers=device["headers"], json={"offline_after_s": 1})
        assert resp.json()["device"]["offline_after_s"] == 1
    store = app.state.services.store
    changes = []

    async def listener(change) -> None:
        changes.append((change.device.id, change.online))

    monitors = [PresenceMonitor(store, default_offline_after_s=300, check_interval_s=0.1) for _ in range(2)]
    for monitor in monitors:  # two processes, as it were
        monitor.subscribe(listener)
    await client.post("/api/v1/devices/telemetry", headers=quiet["headers"], json={"t": 1})
    await client.post("/api/v1/devices/telemetry", headers=chatty["headers"], json={"t": 1})
    tasks = [asyncio.get_running_loop().create_task(m.run()) for m in monitors]
    try:
        for _ in range(25):  # 2.5 s: chatty keeps talking, quiet stops after its first message
            await client.post("/api/v1/devices/telemetry", headers=chatty["headers"], json={"t": 2})
            await asyncio.sleep(0.1)
        assert sorted(changes[:2]) == sorted([(quiet["id"], True), (chatty["id"], True)])
        assert changes[2:] == [(quiet["id"], False)]
        shown = (await client.get(f"/api/v1/devices/{quiet['id']}", headers=tenant["headers"])).json()
        assert shown["device"]["is_online"] is False

        await client.post("/api/v1/devices/heartbeat", headers=quiet["headers"])  # back
        for _ in range(20):
            if len(changes) == 4:
                break
            await asyncio.sleep(0.1)
        assert changes[3:] == [(quiet["id"], True)]
    finally:
        for task in tasks:
            task.cancel()


async def test_an_mqtt_state_change_is_announced_at_once(app, make_tenant, make_device) -> None:
    services = app.state.services
    tenant, _, _ = await services.tenants.create("presence")
    device, _ = await services.devices.register(tenant.id, name="m", device_id="meter-presence")
    seen = []

    async def listener(change) -> None:
        seen.append(change.online)

    services.presence.subscribe(listener)  # the app's monitor hears the broker's reports
    await services.telemetry.record_connection(device, "online")
    await services.telemetry.record_connection(device, "online")  # a repeat is no change
    await services.telemetry.record_connection(device, "offline")  # its last will
    assert seen == [True, False]


async def test_offline_after_must_be_a_sensible_number_of_seconds(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    for value in (0, -5, "30", 1.5, True, 10**9):
        resp = await client.put("/api/v1/devices/config", headers=device["headers"], json={"offline_after_s": value})
        assert resp.status_code == 422, value
    resp = await client.get("/api/v1/devices/status", headers=device["headers"])
    assert resp.json()["device"]["offline_after_s"] is None

"""Online status changes as events: silence past a device's offline_after, on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from telemetra.domain.timeparse import utcnow
from telemetra.registry.presence import PresenceMonitor


async def test_a_device_silent_past_its_offline_after_is_reported_offline_once(app, client, make_tenant,
                                                                                make_device) -> None:
    tenant = await make_tenant()
    quiet, chatty = await make_device(tenant), await make_device(tenant)
    for device in (quiet, chatty):
        resp = await client.put("/api/v1/devices/config", headers=device["headers"], json={"offline_after_s": 1})
        assert resp.json()["device"]["offline_after_s"] == 1
    store = app.state.services.store
    monitor = PresenceMonitor(store, default_offline_after_s=300, check_interval_s=0.1)
    changes = []

    async def listener(change) -> None:
        changes.append(change)
    monitor.subscribe(listener)
    await client.post("/api/v1/devices/telemetry", headers=quiet["headers"], json={"t": 1})
    await client.post("/api/v1/devices/telemetry", headers=chatty["headers"], json={"t": 1})
    task = asyncio.get_running_loop().create_task(monitor.run())
    try:
        shown = (await client.get(f"/api/v1/devices/{quiet['id']}", headers=tenant["headers"])).json()
        assert shown["device"]["is_online"] is True
        for _ in range(20):  # 2 s: chatty keeps talking, quiet stops
            await client.post("/api/v1/devices/telemetry", headers=chatty["headers"], json={"t": 2})
            await asyncio.sleep(0.1)
        assert [(c.device.id, c.online, c.reason) for c in changes] == [(quiet["id"], False, "silence")]
        shown = (await client.get(f"/api/v1/devices/{quiet['id']}", headers=tenant["headers"])).json()
        assert shown["device"]["is_online"] is False
    finally:
        task.cancel()
    # The store's question, directly: nothing went silent in an interval long past.
    assert await store.devices_gone_silent(utcnow() - timedelta(days=2), utcnow() - timedelta(days=1), 1) == []


async def test_offline_after_must_be_a_sensible_number_of_seconds(client, make_tenant, make_device) -> None:
    device = await make_device(await make_tenant())
    for value in (0, -5, "30", 1.5, True, 10**9):
        resp = await client.put("/api/v1/devices/config", headers=device["headers"], json={"offline_after_s": value})
        assert resp.status_code == 422, value
    resp = await client.get("/api/v1/devices/status", headers=device["headers"])
    assert resp.json()["device"]["offline_after_s"] is None

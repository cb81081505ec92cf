"""GET /api/v1/overview: devices by presence, messages per minute (counted by the writer in the batch's
transaction), active alerts by severity, the devices that sent most; per tenant."""

from __future__ import annotations

from datetime import timedelta

from telemetra.domain.timeparse import utcnow
from tests.api.test_alerts import eventually, rule


async def _send(client, device, n: int = 1, **data) -> None:
    for _ in range(n):
        resp = await client.post(
            "/api/v1/devices/telemetry", headers=device["headers"], json={"data": data or {"t": 1}}
        )
        assert resp.status_code == 201, resp.text


async def test_overview_counts_the_tenants_fleet_only(client, app, make_tenant, make_device) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    busy, quiet, never = [await make_device(tenant) for _ in range(3)]
    theirs = await make_device(other)
    await _send(client, busy, 5)
    await _send(client, quiet, 2)
    await _send(client, theirs, 7)
    batch = await client.post(
        "/api/v1/telemetry/batch",
        headers=tenant["headers"],
        json=[{"device_id": busy["id"], "data": {"t": n}} for n in range(4)],
    )
    assert batch.status_code in (200, 201, 207), batch.text
    await rule(client, tenant, key="t", severity="critical", condition={"type": "threshold", "op": ">", "value": 50})
    await _send(client, quiet, t=99)

    async def raised():
        body = (await client.get("/api/v1/overview", headers=tenant["headers"])).json()
        return body if body["alerts_by_severity"]["critical"] == 1 else None

    body = await eventually(raised)
    assert body["devices"] == {"online": 2, "offline": 0, "never_seen": 1}
    minutes = body["messages_per_minute"]
    assert len(minutes) == 1440 and minutes == sorted(minutes, key=lambda m: m["t"])
    assert sum(m["count"] for m in minutes) == 5 + 2 + 4 + 1
    assert minutes[-1]["t"] >= (utcnow() - timedelta(minutes=2)).isoformat()[:16]
    assert body["alerts_by_severity"] == {"critical": 1, "major": 0, "minor": 0, "warning": 0, "info": 0}
    assert body["top_devices"] == [
        {"device_id": busy["id"], "name": busy["name"], "count": 9},
        {"device_id": quiet["id"], "name": quiet["name"], "count": 3},
    ]
    theirs_body = (await client.get("/api/v1/overview", headers=other["headers"])).json()
    assert sum(m["count"] for m in theirs_body["messages_per_minute"]) == 7
    assert [d["device_id"] for d in theirs_body["top_devices"]] == [theirs["id"]]
    assert theirs_body["devices"] == {"online": 1, "offline": 0, "never_seen": 0}

    # A duplicate (same msg_id) is not counted again; a deleted device leaves the top list.
    for _ in range(2):
        resp = await client.post(
            "/api/v1/devices/telemetry", headers=quiet["headers"], json={"data": {"t": 1}, "msg_id": "once"}
        )
        assert resp.status_code == 201
    assert (await client.delete(f"/api/v1/devices/{busy['id']}", headers=tenant["headers"])).status_code == 204
    body = (await client.get("/api/v1/overview", headers=tenant["headers"])).json()
    assert body["top_devices"] == [{"device_id": quiet["id"], "name": quiet["name"], "count": 4}]
    assert sum(m["count"] for m in body["messages_per_minute"]) == 13  # what arrived stays counted
    assert body["devices"]["online"] + body["devices"]["offline"] + body["devices"]["never_seen"] == 2
    _ = never


async def test_minute_counts_are_pruned_by_retention(app, store, make_tenant, client) -> None:
    tenant = await make_tenant()
    tenant_id = tenant["tenant"]["id"]
    now = utcnow()
    console = store.console
    # Written as the writer writes them: through a batch, at an old arrival time.
    from telemetra.domain.models import TelemetryMessage

    device, _ = await app.state.services.devices.register(tenant_id, name="d")
    old = now - timedelta(days=3)
    message = TelemetryMessage(
        device_pk=device.pk,
        ts=old,
        data={"t": 1},
        metadata={},
        type="sensor",
        points=[],
        device_id=device.id,
        tenant_id=tenant_id,
    )
    await store.write_telemetry([message], old)
    assert sum(c for _, c in await console.minute_counts(tenant_id, old - timedelta(minutes=1))) == 1
    await store.apply_retention(now)
    assert await console.minute_counts(tenant_id, old - timedelta(minutes=1)) == []


async def test_overview_refuses_other_callers(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    assert (await client.get("/api/v1/overview")).status_code == 401
    assert (await client.get("/api/v1/overview", headers=device["headers"])).status_code == 403

"""POST /api/v1/telemetry/batch, idempotent retries, and 503 under overload."""

from __future__ import annotations

import asyncio


async def _count(client, admin_headers) -> int:
    stats = (await client.get("/api/v1/admin/dashboard", headers=admin_headers)).json()["statistics"]
    return stats["telemetry"]["total_records"]


async def test_batch_accepts_many_devices_and_formats(client, make_tenant, make_device, admin_headers) -> None:
    tenant = await make_tenant()
    a, b = await make_device(tenant), await make_device(tenant)
    body = {
        "messages": [
            {"device_id": a["id"], "data": {"t": 1}, "timestamp": "2026-11-22T10:00:00Z"},
            {"device_id": b["id"], "ts": 1795341600000, "values": {"instant_power": 2500}},
            {
                "bizCode": "devicePropertyMessage",
                "bizData": {
                    "devId": a["id"],
                    "properties": [{"code": "temp_interior", "dpId": 2, "time": 1795341600000, "value": 19.5}],
                },
            },
            {"device_id": b["id"], "voltages": [230.1, 229.8]},
        ]
    }
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["accepted"], out["rejected"]) == (4, 0)
    assert [r["status"] for r in out["results"]] == ["accepted"] * 4
    assert all(isinstance(r["telemetry_id"], int) for r in out["results"])
    latest = (await client.get(f"/api/v1/devices/{b['id']}/latest", headers=tenant["headers"])).json()["latest"]
    assert {k: v["value"] for k, v in latest.items()} == {
        "instant_power": 2500.0,
        "voltages.0": 230.1,
        "voltages.1": 229.8,
    }
    assert await _count(client, admin_headers) == 4


async def test_batch_reports_rejections_per_message(client, make_tenant, make_device, admin_headers) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    mine, theirs = await make_device(tenant), await make_device(other)
    body = [
        {"device_id": mine["id"], "data": {"t": 1}},
        {"device_id": theirs["id"], "data": {"t": 2}},  # another tenant's device
        {"device_id": "nowhere", "data": {"t": 3}},
        {"data": {"t": 4}},  # no device named
        {"device_id": mine["id"], "data": {"t": "x" * 5000}},  # invalid value
        "not an object",
    ]
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)
    assert resp.status_code == 207
    out = resp.json()
    assert (out["accepted"], out["rejected"]) == (1, 5)
    assert [r.get("code") for r in out["results"]] == [
        None,
        "device_not_found",
        "device_not_found",
        "missing_device_id",
        "value_too_long",
        "missing_device_id",
    ]
    assert await _count(client, admin_headers) == 1
    # Nothing reached the other tenant's device.
    theirs_latest = await client.get(f"/api/v1/devices/{theirs['id']}/latest", headers=other["headers"])
    assert theirs_latest.json()["latest"] == {}


async def test_batch_with_nothing_valid_is_422(client, make_tenant, admin_headers) -> None:
    tenant = await make_tenant()
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=[{"device_id": "x", "t": 1}])
    assert resp.status_code == 422 and resp.json()["code"] == "batch_rejected"
    assert resp.json()["details"]["rejected"] == 1
    for bad in ([], {"messages": "x"}, {"other": []}, 5):
        r = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=bad)
        assert r.status_code == 422 and r.json()["code"] == "invalid_batch"
    assert await _count(client, admin_headers) == 0


async def test_batch_limits_and_keys(client, app, make_tenant, make_device, admin_headers) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    app.state.services.settings.batch_max_messages = 3
    too_many = [{"device_id": device["id"], "t": i} for i in range(4)]
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=too_many)
    assert resp.status_code == 413
    for headers in ({}, device["headers"], admin_headers):
        r = await client.post("/api/v1/telemetry/batch", headers=headers, json=too_many[:1])
        assert r.status_code in (401, 403)
    ingest = await client.post(
        f"/api/v1/admin/tenants/{tenant['tenant']['id']}/keys", headers=admin_headers, json={"scope": "ingest"}
    )
    r = await client.post("/api/v1/telemetry/batch", headers={"X-API-Key": ingest.json()["api_key"]}, json=too_many[:2])
    assert r.status_code == 200 and r.json()["accepted"] == 2


async def test_msg_id_retry_is_acknowledged_once_stored(client, make_tenant, make_device, admin_headers) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    body = {"data": {"t": 1}, "msg_id": "boot-7/0001"}
    first = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=body)
    retry = await client.post("/api/v1/devices/telemetry", headers=device["headers"], json=body)
    assert first.status_code == retry.status_code == 201
    assert retry.json()["telemetry_id"] == first.json()["telemetry_id"] and retry.json()["duplicate"] is True
    batch = await client.post(
        "/api/v1/telemetry/batch", headers=tenant["headers"], json=[{**body, "device_id": device["id"]}]
    )
    assert batch.json()["results"][0]["duplicate"] is True
    assert await _count(client, admin_headers) == 1


async def test_overload_answers_503_with_retry_after(
    client, app, make_tenant, make_device, admin_headers, monkeypatch
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    services = app.state.services
    pipeline = services.pipeline
    pipeline.max_queue_messages = 1
    # Hold every commit until a request has been refused. With the writers busy (at most one more batch
    # taken) and one message queued the queue is full, whatever the timing of the requests.
    writing, release = asyncio.Event(), asyncio.Event()
    write_telemetry = services.store.write_telemetry

    async def held_write(messages, now):
        writing.set()
        await release.wait()
        return await write_telemetry(messages, now)

    monkeypatch.setattr(services.store, "write_telemetry", held_write)

    def post(i: int):
        return asyncio.ensure_future(
            client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"i": i}})
        )

    first = post(0)
    await asyncio.wait_for(writing.wait(), 10)
    others = [post(i) for i in range(1, 5)]
    done, _ = await asyncio.wait(others, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert done and all(t.result().status_code == 503 for t in done)  # nothing answered 201 before its commit
    release.set()
    responses = [await first] + [await t for t in others]
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 201 and 503 in statuses
    refused = [r for r in responses if r.status_code == 503]
    assert all(r.headers["Retry-After"] == "1" and r.json()["code"] == "overloaded" for r in refused)
    assert await _count(client, admin_headers) == statuses.count(201)
    metrics = (await client.get("/metrics")).text
    assert 'telemetra_ingest_overloaded_total{source="http"}' in metrics


async def test_a_full_queue_refuses_a_batch_before_reading_its_body(
    client, app, make_tenant, make_device, monkeypatch
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    services = app.state.services
    pipeline = services.pipeline
    pipeline.max_queue_messages = 1
    # Every writer held busy until the refusal: the batches sent meanwhile wait in the queue.
    release = asyncio.Event()
    held: list[int] = []
    write_telemetry = services.store.write_telemetry

    async def held_write(messages, now):
        held.append(len(messages))
        await release.wait()
        return await write_telemetry(messages, now)

    monkeypatch.setattr(services.store, "write_telemetry", held_write)
    body = [{"device_id": device["id"], "data": {"t": 1}}]
    sent = []
    while not pipeline.queued_messages:  # one batch per writer is taken at once; the next one waits
        sent.append(asyncio.ensure_future(client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)))
        while len(held) + pipeline.queued_messages < len(sent):  # one at a time: each in a writer or queued
            await asyncio.sleep(0.01)
    refused = await client.post(
        "/api/v1/telemetry/batch",
        content=b"{not json",
        headers={**tenant["headers"], "Content-Type": "application/json"},
    )
    # 503, not 422: the body was never parsed (under overload that work would be thrown away)
    assert refused.status_code == 503 and refused.json()["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    release.set()
    assert [(await r).status_code for r in sent] == [200] * len(sent)


async def test_batch_devices_come_from_the_cache_until_a_device_changes(
    client, app, store, make_tenant, make_device, admin_headers
) -> None:
    tenant = await make_tenant()
    a, b = await make_device(tenant), await make_device(tenant)
    lookups = []
    read_devices = store.get_devices

    async def counted(device_ids):
        lookups.append(sorted(device_ids))
        return await read_devices(device_ids)

    store.get_devices = counted
    body = {"messages": [{"device_id": a["id"], "data": {"t": 1}}, {"device_id": b["id"], "data": {"t": 2}}]}
    first = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)
    assert first.json()["accepted"] == 2 and lookups == [sorted([a["id"], b["id"]])]
    again = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)
    assert again.json()["accepted"] == 2 and len(lookups) == 1  # a batch does not read its devices again
    assert (await client.delete(f"/api/v1/admin/devices/{b['id']}", headers=admin_headers)).status_code == 200
    after = (await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=body)).json()
    assert (after["accepted"], after["rejected"]) == (1, 1)  # the deleted device is refused at once
    assert after["results"][1]["code"] == "device_not_found"

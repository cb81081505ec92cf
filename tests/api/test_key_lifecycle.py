"""Key lifecycle for a tenant: its keys and its devices' keys listed with their use, rotated with a grace
period, revoked; a revoked or expired key stops working at the next request."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.domain.timeparse import utcnow

AUTH_CACHE_TTL_S = 0.3


@pytest.fixture
def settings(settings):
    # A short authentication cache: changes made behind this process's back are seen within it.
    return settings.model_copy(update={"auth_cache_ttl_s": AUTH_CACHE_TTL_S})


async def test_the_tenant_sees_its_keys_and_its_devices_keys_with_their_use(
    client, app, make_tenant, make_device
) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    device = await make_device(tenant)
    for i in range(3):
        await client.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": i}})
    await app.state.services.activity.flush()

    listed = await client.get("/api/v1/keys", headers=tenant["headers"])
    devices_only = await client.get("/api/v1/keys?kind=device", headers=tenant["headers"])
    theirs = await client.get("/api/v1/keys", headers=other["headers"])

    assert listed.status_code == 200, listed.text
    keys = {k["kind"]: k for k in listed.json()["keys"]}
    assert set(keys) == {"tenant", "device"}
    assert keys["device"]["device_id"] == device["id"] and keys["device"]["usage_count"] == 3
    assert keys["device"]["status"] == "active" and keys["device"]["last_used_at"] is not None
    assert keys["device"]["prefix"] == device["api_key"][:11]
    assert device["api_key"] not in listed.text and tenant["api_key"] not in listed.text
    assert [k["kind"] for k in devices_only.json()["keys"]] == ["device"]
    assert device["id"] not in theirs.text
    assert (await client.get("/api/v1/keys", headers=device["headers"])).status_code == 403


async def test_a_rotated_key_keeps_working_for_its_grace_period_only(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    key_id = (await client.get("/api/v1/keys?kind=device", headers=tenant["headers"])).json()["keys"][0]["id"]

    rotated = await client.post(f"/api/v1/keys/{key_id}/rotate", headers=tenant["headers"], json={"grace_s": 1})

    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    new_headers = {"X-API-Key": body["api_key"]}
    assert body["key"]["device_id"] == device["id"] and body["api_key"].startswith("tlmd_")
    expires = datetime.fromisoformat(body["previous"]["expires_at"])
    assert timedelta(0) < expires - utcnow() <= timedelta(seconds=1)
    assert (await client.get("/api/v1/devices/status", headers=new_headers)).status_code == 200
    # The old key still works during the grace period, then stops: poll instead of guessing a sleep.
    answers = []
    for _ in range(50):
        answers.append((await client.get("/api/v1/devices/status", headers=device["headers"])).status_code)
        if answers[-1] == 401:
            break
        await asyncio.sleep(0.1)
    assert answers[0] == 200 and answers[-1] == 401
    refused = await client.get("/api/v1/devices/status", headers=device["headers"])
    assert refused.json()["code"] == "api_key_expired"
    assert (await client.get("/api/v1/devices/status", headers=new_headers)).status_code == 200


async def test_rotation_without_grace_and_revocation_act_at_once(client, make_tenant) -> None:
    tenant = await make_tenant()
    created = await client.post("/api/v1/keys", headers=tenant["headers"], json={"scope": "ingest", "name": "gw"})
    assert created.status_code == 201 and created.json()["key"]["scope"] == "ingest"
    gateway = {"X-API-Key": created.json()["api_key"]}
    key_id = created.json()["key"]["id"]

    rotated = await client.post(f"/api/v1/keys/{key_id}/rotate", headers=tenant["headers"])
    assert rotated.status_code == 201 and rotated.json()["key"]["scope"] == "ingest"
    assert rotated.json()["previous"]["status"] == "revoked"
    assert (
        await client.post("/api/v1/telemetry/batch", headers=gateway, json=[{"device_id": "x", "data": {"t": 1}}])
    ).json()["code"] == "api_key_revoked"
    again = await client.post(f"/api/v1/keys/{key_id}/rotate", headers=tenant["headers"])
    assert again.status_code == 409 and again.json()["code"] == "key_not_usable"

    new_id = rotated.json()["key"]["id"]
    revoked = await client.delete(f"/api/v1/keys/{new_id}", headers=tenant["headers"])
    assert revoked.status_code == 200 and revoked.json()["key"]["status"] == "revoked"
    assert (
        await client.post(
            "/api/v1/telemetry/batch",
            headers={"X-API-Key": rotated.json()["api_key"]},
            json=[{"device_id": "x", "data": {"t": 1}}],
        )
    ).status_code == 401


async def test_a_tenant_cannot_touch_another_tenants_or_the_admin_keys(client, store, make_tenant, make_device) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    device = await make_device(other)
    their_keys = [k.id for k in await store.list_keys(tenant_id=other["tenant"]["id"])]
    admin_keys = [k.id for k in await store.list_keys(kind="admin")]

    for key_id in their_keys + admin_keys:
        assert (await client.post(f"/api/v1/keys/{key_id}/rotate", headers=tenant["headers"])).status_code == 404
        assert (await client.delete(f"/api/v1/keys/{key_id}", headers=tenant["headers"])).status_code == 404
    assert (await client.get("/api/v1/devices/status", headers=device["headers"])).status_code == 200
    assert (await client.get("/api/v1/devices", headers=other["headers"])).status_code == 200


async def test_a_key_expired_elsewhere_is_refused_within_the_cache_ttl(client, store, make_tenant) -> None:
    tenant = await make_tenant()
    created = (
        await client.post(
            "/api/v1/keys",
            headers=tenant["headers"],
            json={"expires_at": (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()},
        )
    ).json()
    headers = {"X-API-Key": created["api_key"]}
    assert (await client.get("/api/v1/devices", headers=headers)).status_code == 200

    await store.expire_key(created["key"]["id"], utcnow())  # as another process (or the CLI) would
    await asyncio.sleep(AUTH_CACHE_TTL_S)

    refused = await client.get("/api/v1/devices", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_expired"
    listed = (await client.get("/api/v1/keys?kind=tenant", headers=tenant["headers"])).json()["keys"]
    assert [k["status"] for k in listed if k["id"] == created["key"]["id"]] == ["expired"]

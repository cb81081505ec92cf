"""Authenticated keys are kept in memory for a while: changes made through this server apply at once,
changes made elsewhere (another server, the CLI) within the TTL, or sooner when the credential epoch is read
(tests/test_key_revocation_processes.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from telemetra.api.app import create_app
from telemetra.domain.timeparse import utcnow


async def test_device_changes_through_this_server_apply_at_once(
    client, admin_headers, make_tenant, make_device, app
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    assert (await client.get("/api/v1/devices/status", headers=device["headers"])).status_code == 200  # cached
    changed = await client.put(f"/api/v1/admin/devices/{device['id']}", headers=admin_headers, json={"name": "renamed"})
    assert changed.status_code == 200
    status = await client.get("/api/v1/devices/status", headers=device["headers"])
    assert status.json()["device"]["name"] == "renamed"
    # Attributes reported one after the other are all kept, whatever copy of the device the key carries.
    for doc in ({"a": 1}, {"b": 2}):
        assert (await client.put("/api/v1/devices/config", headers=device["headers"], json=doc)).status_code == 200
    stored = await app.state.services.store.get_device(device["id"])
    assert stored.attributes["a"] == 1 and stored.attributes["b"] == 2
    # A rotated device key stops working at once.
    old_key = device["headers"]
    await app.state.services.keys.rotate_device_key(stored)
    refused = await client.post("/api/v1/devices/telemetry", headers=old_key, json={"data": {"t": 1}})
    assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"


@pytest.fixture
def short_ttl_settings(settings):
    return settings.model_copy(update={"auth_cache_ttl_s": 0.3})


async def test_a_revocation_elsewhere_applies_within_the_ttl(
    short_ttl_settings, store, client, make_tenant, make_device
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    # A second server on the same database, keeping keys 0.3 s.
    other = create_app(short_ttl_settings, store)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other") as second,
    ):
        sent = await second.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 1}})
        assert sent.status_code == 201
        (key,) = await store.list_keys(device_pk=(await store.get_device(device["id"])).pk, kind="device")
        await store.revoke_key(key.id, utcnow())  # as the CLI does, bypassing either server
        await asyncio.sleep(0.4)
        refused = await second.post("/api/v1/devices/telemetry", headers=device["headers"], json={"data": {"t": 2}})
        assert refused.status_code == 401 and refused.json()["code"] == "api_key_revoked"

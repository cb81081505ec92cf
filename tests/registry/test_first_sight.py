"""A device registered on first sight (seed 001's /message, through DeviceService.get_or_register): once, even
when its first messages race; never by a key of scope ingest; never when the message is refused."""

from __future__ import annotations

import asyncio

import pytest

from telemetra.errors import DeviceNameTaken, DeviceNotFound, ValidationFailed
from telemetra.store import DeviceFilter


async def test_messages_racing_to_register_a_new_device_get_the_same_one(app, make_tenant) -> None:
    services = app.state.services
    tenant = await make_tenant()
    principal = await services.auth.authenticate(tenant["api_key"])

    # Every lookup is issued before any of them answers: all five find no device and try to register it.
    found = await asyncio.gather(
        *(services.devices.get_or_register(principal, "heater-raced", device_type="heater") for _ in range(5))
    )

    assert {d.pk for d in found} == {found[0].pk} and found[0].device_type == "heater"
    _, total = await services.devices.list(DeviceFilter(tenant_id=tenant["tenant"]["id"]))
    assert total == 1


async def test_an_ingest_key_or_a_refused_message_registers_nothing(app, client, make_tenant, store) -> None:
    services = app.state.services
    tenant = await make_tenant()
    made = await client.post("/api/v1/keys", headers=tenant["headers"], json={"scope": "ingest", "name": "gw"})
    gateway = await services.auth.authenticate(made.json()["api_key"])
    full = await services.auth.authenticate(tenant["api_key"])
    checked = []

    with pytest.raises(DeviceNotFound, match="scope 'ingest'"):
        await services.devices.get_or_register(
            gateway, "heater-new", device_type="heater", before_register=checked.append
        )

    def refuse(device) -> None:
        checked.append(device)
        raise ValidationFailed("not a valid message")

    with pytest.raises(ValidationFailed):
        await services.devices.get_or_register(full, "heater-new", device_type="heater", before_register=refuse)
    assert [d.id for d in checked] == ["heater-new"]  # the ingest key's message was not even validated
    assert await store.get_device("heater-new") is None


async def test_a_name_another_device_bears_is_still_a_conflict(app, make_tenant, make_device) -> None:
    services = app.state.services
    tenant = await make_tenant()
    await make_device(tenant, id="meter-1", name="heater-named")
    principal = await services.auth.authenticate(tenant["api_key"])

    with pytest.raises(DeviceNameTaken):  # the new device would bear its id as its name
        await services.devices.get_or_register(principal, "heater-named", device_type="heater")

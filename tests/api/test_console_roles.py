"""The console's routes through a session: a viewer reads (overview, fleet, series, the console stream) and
is refused every change (403 forbidden_role); an admin may change; another tenant's device is 404."""

from __future__ import annotations

import pytest

from tests.people import make_user, signed_in


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
async def test_console_routes_by_role(app, client, make_tenant, make_device, role) -> None:
    tenant, theirs = await make_tenant(), await make_tenant()
    device, their_device = await make_device(tenant), await make_device(theirs)
    channel = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={"name": "hook", "kind": "webhook", "config": {"url": "https://example.com/hook", "timeout_s": 2}},
    )
    assert channel.status_code == 201, channel.text
    channel_id = channel.json()["channel"]["id"]
    user = await make_user(app, tenant["tenant"]["id"], role)
    async with signed_in(app, user) as session:
        for path, params in (
            ("/api/v1/overview", {}),
            ("/api/v1/fleet/devices", {"q": device["id"]}),
            (f"/api/v1/devices/{device['id']}/series", {"key": "t"}),
        ):
            resp = await session.get(path, params=params)
            assert resp.status_code == 200, (role, path, resp.text)
        listed = (await session.get("/api/v1/fleet/devices")).json()["items"]
        assert [i["device_id"] for i in listed] == [device["id"]]
        resp = await session.get(f"/api/v1/devices/{their_device['id']}/series", params={"key": "t"})
        assert resp.status_code == 404
        resp = await session.get("/api/v1/stream/console", params={"devices": their_device["id"]})
        assert resp.status_code == 404

        changes = (
            ("PATCH", f"/api/v1/devices/{device['id']}", {"name": "renamed"}, 200),
            ("POST", f"/api/v1/devices/{device['id']}/key/rotate", None, 201),
            ("POST", f"/api/v1/channels/{channel_id}/test", None, 200),
            ("DELETE", f"/api/v1/devices/{device['id']}", None, 204),
        )
        for method, path, body, allowed in changes:
            resp = await session.request(method, path, json=body)
            if role == "admin":
                assert resp.status_code == allowed, (method, path, resp.text)
            else:
                assert resp.status_code == 403 and resp.json()["code"] == "forbidden_role", (role, path, resp.text)

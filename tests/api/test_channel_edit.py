"""Editing a channel: name and configuration change, the kind stays, a secret left out (or sent back masked)
is kept; another tenant's channel is not found; a bad change stores nothing."""

from __future__ import annotations

import pytest

from telemetra.settings import Settings
from tests.conftest import TEST_ADMIN_KEY

OUTBOUND_ALLOW = "127.0.0.1/32"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        outbound_allow=OUTBOUND_ALLOW,
    )


async def _webhook(client, tenant, name: str = "ops hook") -> tuple[dict, str]:
    resp = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={"name": name, "kind": "webhook", "config": {"url": "http://127.0.0.1:9/a", "timeout_s": 2}},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["channel"], resp.json()["secret"]


async def _stored(app, tenant, channel) -> dict:
    found = await app.state.services.store.alerts.get_channel(channel["id"], tenant["tenant"]["id"])
    return {"name": found.name, "kind": found.kind, **found.config}


async def test_edit_keeps_the_kind_and_the_secret_unless_a_new_one_is_given(app, client, make_tenant) -> None:
    tenant = await make_tenant()
    channel, secret = await _webhook(client, tenant)
    path = f"/api/v1/channels/{channel['id']}"

    changed = await client.put(
        path,
        headers=tenant["headers"],
        json={"name": "night hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/b", "timeout_s": 3}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["channel"]["name"] == "night hook"
    assert changed.json()["channel"]["config"] == {"url": "http://127.0.0.1:9/b", "timeout_s": 3, "secret": "********"}
    assert (await _stored(app, tenant, channel))["secret"] == secret

    masked = {"url": "http://127.0.0.1:9/b", "secret": "********"}
    resp = await client.put(
        path, headers=tenant["headers"], json={"name": "night hook", "kind": "webhook", "config": masked}
    )
    assert resp.status_code == 200 and (await _stored(app, tenant, channel))["secret"] == secret

    fresh = {"url": "http://127.0.0.1:9/b", "secret": "a-new-secret-of-mine"}
    resp = await client.put(
        path, headers=tenant["headers"], json={"name": "night hook", "kind": "webhook", "config": fresh}
    )
    assert resp.status_code == 200 and (await _stored(app, tenant, channel))["secret"] == "a-new-secret-of-mine"
    assert "a-new-secret-of-mine" not in resp.text


async def test_bad_edits_change_nothing(app, client, make_tenant) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    channel, _ = await _webhook(client, tenant)
    await _webhook(client, tenant, "second")
    path = f"/api/v1/channels/{channel['id']}"
    before = await _stored(app, tenant, channel)
    good = {"url": "http://127.0.0.1:9/c"}
    cases = [
        ({"name": "ops hook", "kind": "email", "config": good}, 422, "channel_kind_fixed"),
        ({"name": "ops hook", "kind": "webhook", "config": {"timeout_s": 1}}, 422, "invalid_channel"),
        (
            {"name": "ops hook", "kind": "webhook", "config": {"url": "http://10.1.2.3/x"}},
            422,
            "outbound_address_refused",
        ),
        ({"name": "second", "kind": "webhook", "config": good}, 409, None),
        ({"name": "", "kind": "webhook", "config": good}, 422, None),
        ({"name": "x\u0000", "kind": "webhook", "config": good, "extra": 1}, 422, None),
    ]
    for body, status, code in cases:
        resp = await client.put(path, headers=tenant["headers"], json=body)
        assert resp.status_code == status, (body, resp.text)
        if code:
            assert resp.json()["code"] == code
    assert await _stored(app, tenant, channel) == before
    # Another tenant's channel, and one that does not exist, are not found.
    for url in (path, "/api/v1/channels/999999"):
        resp = await client.put(url, headers=other["headers"], json={"name": "mine", "kind": "webhook", "config": good})
        assert resp.status_code == 404
    assert await _stored(app, tenant, channel) == before

"""POST /api/v1/channels/{id}/test: a test notification through the channel's real sender (a signed webhook,
SMTP), its outcome answered and recorded in the delivery log; the outbound guard still applies."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from telemetra.domain.timeparse import utcnow
from telemetra.settings import Settings
from tests.api.test_notifications import OUTBOUND_ALLOW, deliveries, webhook_channel
from tests.conftest import TEST_ADMIN_KEY
from tests.receivers import WebhookReceiver, smtp_servers


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        outbound_allow=OUTBOUND_ALLOW,
    )


@pytest.fixture
def smtp_server():
    yield from smtp_servers()


async def test_a_webhook_test_is_signed_answered_and_logged(client, make_tenant) -> None:
    tenant = await make_tenant()
    hook = WebhookReceiver("unknown yet")
    channel, secret = await webhook_channel(client, tenant, hook.url)
    hook.secret = secret
    hook.start()
    try:
        resp = await client.post(f"/api/v1/channels/{channel['id']}/test", headers=tenant["headers"])
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"delivered": True, "status_code": 204, "error": None}
        (request,) = hook.requests
        assert request.signature_ok
        body = json.loads(request.body)
        assert body["event"] == "channel.test" and body["channel"] == {"id": channel["id"], "name": "ops hook"}

        hook.status = 500
        resp = await client.post(f"/api/v1/channels/{channel['id']}/test", headers=tenant["headers"])
        assert resp.status_code == 200
        failed = resp.json()
        assert failed["delivered"] is False and failed["status_code"] == 500 and failed["error"]
    finally:
        hook.stop()
    attempts = await deliveries(client, tenant, channel)
    assert [(a["ok"], a["status_code"], a["event"]) for a in attempts] == [
        (False, 500, "channel.test"),
        (True, 204, "channel.test"),
    ]
    assert secret not in str(attempts)


async def test_a_receiver_that_is_down_is_an_answer_not_an_error(client, make_tenant, app) -> None:
    tenant = await make_tenant()
    hook = WebhookReceiver("s")  # never started
    channel, _ = await webhook_channel(client, tenant, hook.url)
    resp = await client.post(f"/api/v1/channels/{channel['id']}/test", headers=tenant["headers"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["delivered"] is False and body["status_code"] is None and body["error"]
    (attempt,) = await deliveries(client, tenant, channel)
    assert attempt["ok"] is False
    # Sent once: the dispatcher finds nothing left to send.
    assert await app.state.services.store.alerts.claim_due(utcnow(), 10, timedelta(seconds=1)) == []


async def test_an_email_test_goes_through_smtp(client, make_tenant, smtp_server) -> None:
    server = smtp_server()
    tenant = await make_tenant()
    resp = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={
            "name": "on-call <b>",
            "kind": "email",
            "config": {
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "sender": "alerts@example.com",
                "recipients": ["oncall@example.com"],
                "timeout_s": 5,
            },
        },
    )
    assert resp.status_code == 201, resp.text
    channel = resp.json()["channel"]
    resp = await client.post(f"/api/v1/channels/{channel['id']}/test", headers=tenant["headers"])
    assert resp.status_code == 200 and resp.json()["delivered"] is True and resp.json()["error"] is None
    (mail,) = server.handler.received
    assert mail.rcpt_tos == ["oncall@example.com"]
    assert mail.message["Subject"] == "[Telemetra] test of channel on-call <b>"


async def test_the_outbound_guard_applies_to_tests(client, make_tenant, app) -> None:
    tenant = await make_tenant()
    # Stored as if it had been allowed when it was made: the address is checked again at sending.
    stored = await app.state.services.store.alerts.create_channel(
        tenant["tenant"]["id"], "inside", "webhook", {"url": "http://10.1.2.3:9/hook", "secret": "s" * 32}
    )
    resp = await client.post(f"/api/v1/channels/{stored.id}/test", headers=tenant["headers"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["delivered"] is False and body["status_code"] is None
    assert "10.1.2.3" in body["error"] or "not allowed" in body["error"].lower() or "refus" in body["error"].lower()


async def test_another_tenants_channel_is_not_found(client, make_tenant) -> None:
    tenant, intruder = await make_tenant(), await make_tenant()
    hook = WebhookReceiver("s")
    channel, _ = await webhook_channel(client, tenant, hook.url)
    for who, path, status in (
        (intruder, f"/api/v1/channels/{channel['id']}/test", 404),
        (tenant, "/api/v1/channels/999999/test", 404),
        (tenant, "/api/v1/channels/abc/test", 422),
        (tenant, "/api/v1/channels/99999999999999999999/test", 422),
    ):
        resp = await client.post(path, headers=who["headers"])
        assert resp.status_code == status, (path, resp.text)
        assert set(resp.json()) >= {"error", "code", "message"}
    assert await deliveries(client, tenant, channel) == []
    assert hook.requests == []

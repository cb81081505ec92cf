"""Notifications end to end: a rule fires, its alert goes through the outbox to a real webhook receiver (which
checks every signature) and a real SMTP server; a receiver that is down gets it when it is back, and a
sender that dies mid-delivery neither loses nor duplicates a notification."""

from __future__ import annotations

import asyncio
from collections import Counter

import jsonschema_rs
import orjson
import pytest

from telemetra.alerts.dispatcher import Dispatcher
from telemetra.notify.outbound import OutboundPolicy
from telemetra.settings import Settings
from tests.api.test_alerts import alerts, eventually, rule, send
from tests.conftest import TEST_ADMIN_KEY
from tests.receivers import WebhookReceiver, smtp_servers

# The receivers run on 127.0.0.1, which an operator allows the same way (by default it is refused).
OUTBOUND_ALLOW = "127.0.0.1/32"
LOCAL = OutboundPolicy.from_text(OUTBOUND_ALLOW)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The app's own dispatcher looks at the outbox often and retries soon, so a test sees delivery in seconds.
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        notify_interval_s=0.05,
        notify_backoff_base_s=0.2,
        outbound_allow=OUTBOUND_ALLOW,
    )


@pytest.fixture
def smtp_server():
    yield from smtp_servers()


async def webhook_channel(client, tenant, url: str) -> tuple[dict, str]:
    resp = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={"name": "ops hook", "kind": "webhook", "config": {"url": url, "timeout_s": 2}},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["channel"]["config"]["secret"] == "********"  # shown once, in "secret", never again
    return body["channel"], body["secret"]


async def deliveries(client, tenant, channel) -> list[dict]:
    resp = await client.get(f"/api/v1/channels/{channel['id']}/deliveries", headers=tenant["headers"])
    assert resp.status_code == 200, resp.text
    return resp.json()["deliveries"]


async def test_a_webhook_that_is_down_gets_each_notification_once_it_is_back(
    app, client, make_tenant, make_device
) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    hook = WebhookReceiver("unknown yet")  # not started: the receiver is down
    channel, secret = await webhook_channel(client, tenant, hook.url)
    hook.secret = secret
    await rule(
        client,
        tenant,
        name="hot",
        key="temperature",
        severity="critical",
        channels=[channel["id"]],
        condition={"type": "threshold", "op": ">", "value": 80},
        clear={"type": "threshold", "op": "<", "value": 70},
    )

    await send(client, tenant, device, temperature=85)
    failed = await eventually(lambda: deliveries(client, tenant, channel))
    assert not failed[-1]["ok"] and failed[-1]["status_code"] is None and failed[-1]["error"]
    assert failed[-1]["event"] == "alert.raised"

    try:
        hook.start()
        await eventually(lambda: hook.requests)
        await send(client, tenant, device, temperature=60)  # clears: a second notification
        await eventually(lambda: _events(hook) == {"alert.raised", "alert.cleared"} or None)
        await asyncio.sleep(0.5)  # several dispatcher passes: nothing more may arrive
    finally:
        hook.stop()

    assert all(r.signature_ok for r in hook.requests)
    keys = Counter(r.headers["Idempotency-Key"] for r in hook.requests)
    assert len(keys) == 2 and set(keys.values()) == {1}, keys  # each notification once, after the receiver was up
    raised = next(r for r in hook.requests if r.headers["X-Telemetra-Event"] == "alert.raised")
    payload = orjson.loads(raised.body)
    assert payload["alert"]["device_id"] == device["id"] and payload["alert"]["severity"] == "critical"
    assert payload["alert"]["device_name"] == device["name"]  # people know the device by its name
    # Each body is what the document's `webhooks` say it is.
    components = app.openapi()["components"]
    documented = jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/NotificationBody", "components": components}
    )
    for request in hook.requests:
        body = orjson.loads(request.body)
        assert documented.is_valid(body), list(documented.iter_errors(body))
        assert body["event"] == request.headers["X-Telemetra-Event"]
    assert payload["alert"]["last_value"] == 85.0
    attempts = await deliveries(client, tenant, channel)
    assert [a["ok"] for a in attempts if a["event"] == "alert.cleared"] == [True]
    raised_attempts = [a for a in attempts if a["event"] == "alert.raised"]
    assert raised_attempts[0]["ok"] and not any(a["ok"] for a in raised_attempts[1:])  # newest first


async def test_an_email_channel_sends_the_alert_through_smtp(client, make_tenant, make_device, smtp_server) -> None:
    server = smtp_server()
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={
            "name": "on-call",
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
    await rule(
        client,
        tenant,
        name="leak",
        key="pressure",
        severity="major",
        channels=[channel["id"]],
        condition={"type": "range", "low": 1, "high": 3},
    )

    await send(client, tenant, device, pressure=0.2)
    (mail,) = await eventually(lambda: server.handler.received)
    assert mail.rcpt_tos == ["oncall@example.com"]
    message = mail.message
    assert message["Subject"] == f"[Telemetra] MAJOR: leak on {device['name']} ({device['id']})"
    (alert,) = await alerts(client, tenant)
    assert message["Message-ID"] == f"<alert-{alert['id']}-alert.raised-channel-{channel['id']}@telemetra>"
    text = message.get_body(("plain",)).get_content()
    assert "pressure" in text and f"device: {device['name']} ({device['id']})" in text
    # An active alert has not cleared: the field is left out, not printed as None.
    assert "None" not in text and "cleared_at" not in text
    (attempt,) = await eventually(lambda: deliveries(client, tenant, channel))
    assert attempt["ok"] and attempt["status_code"] == 250  # the SMTP reply, as the schema documents

    await send(client, tenant, device, pressure=2)  # back in range: the alert clears
    cleared = await eventually(lambda: server.handler.received[1:])
    assert cleared[0].message["Subject"] == f"[Telemetra] cleared: leak on {device['name']} ({device['id']})"
    assert "cleared_at: " in cleared[0].message.get_body(("plain",)).get_content()


async def test_the_notifications_of_an_alert_reach_a_channel_in_order(app, client, make_tenant, make_device) -> None:
    """A "raised" whose first attempt failed is retried, and delivered, before the "cleared" that followed
    it goes out: the cleared one waited, although it was due first."""
    app.state.dispatcher.backoff_base_s = 2.0  # the raised one's retry comes long after the cleared one is due
    tenant = await make_tenant()
    device = await make_device(tenant)
    hook = WebhookReceiver("unknown yet", fail_first=1)
    channel, hook.secret = await webhook_channel(client, tenant, hook.url)
    await rule(
        client,
        tenant,
        name="hot",
        key="temperature",
        channels=[channel["id"]],
        condition={"type": "threshold", "op": ">", "value": 80},
        clear={"type": "threshold", "op": "<", "value": 70},
    )
    hook.start()
    try:
        await send(client, tenant, device, temperature=85)
        await eventually(lambda: hook.requests)  # the first attempt of "raised": 503
        await send(client, tenant, device, temperature=60)  # clears while "raised" waits for its retry
        await eventually(lambda: len(hook.requests) >= 3 or None)
        await asyncio.sleep(0.3)  # nothing more may arrive
    finally:
        hook.stop()
    events = [r.headers["X-Telemetra-Event"] for r in hook.requests]
    assert events == ["alert.raised", "alert.raised", "alert.cleared"], events
    attempts = await deliveries(client, tenant, channel)
    assert [(a["event"], a["ok"]) for a in reversed(attempts)] == [
        ("alert.raised", False),
        ("alert.raised", True),
        ("alert.cleared", True),
    ]


async def test_a_sender_that_dies_mid_delivery_loses_and_duplicates_nothing(
    app, client, make_tenant, make_device
) -> None:
    store = app.state.services.store
    app.state.dispatcher.interval_s = 3600  # the app's own sender stands aside: two are started by hand below
    await asyncio.sleep(0.1)
    tenant = await make_tenant()
    hook = WebhookReceiver("unknown yet", delay_s=30)  # holds each request unanswered
    channel, hook.secret = await webhook_channel(client, tenant, hook.url)
    await rule(
        client,
        tenant,
        name="hot",
        key="t",
        channels=[channel["id"]],
        condition={"type": "threshold", "op": ">", "value": 1},
    )
    devices = [await make_device(tenant) for _ in range(3)]
    for device in devices:
        await send(client, tenant, device, t=5)
    await eventually(lambda: _pending(store, 3))

    hook.start()
    try:
        first = Dispatcher(store, lease_s=1.0, outbound=LOCAL)
        sending = asyncio.create_task(first.deliver_due())
        await eventually(lambda: len(hook.requests) >= 1 or None)
        sending.cancel()  # the process dies while its receiver holds the request: nothing is recorded
        await asyncio.gather(sending, return_exceptions=True)
        await first.close()

        hook.delay_s = 0
        second = Dispatcher(store, lease_s=1.0, outbound=LOCAL)
        try:
            assert await second.deliver_due() == 0  # still leased by the dead sender
            await asyncio.sleep(1.1)
            assert await second.deliver_due() == 3
            assert await second.deliver_due() == 0  # all delivered: nothing is sent again
        finally:
            await second.close()
    finally:
        hook.stop()

    assert await store.alerts.outbox_counts() == {"delivered": 3}
    keys = Counter(r.headers["Idempotency-Key"] for r in hook.requests)
    assert len(keys) == 3  # one per alert, none lost
    # The request the dead sender had made comes again with the same key: the receiver drops the repeat.
    assert sorted(keys.values()) == [1, 1, 2]
    assert all(r.signature_ok for r in hook.requests)


async def test_two_senders_never_send_the_same_notification(app, client, make_tenant, make_device) -> None:
    store = app.state.services.store
    app.state.dispatcher.interval_s = 3600
    await asyncio.sleep(0.1)
    tenant = await make_tenant()
    hook = WebhookReceiver("unknown yet", delay_s=0.05)
    channel, hook.secret = await webhook_channel(client, tenant, hook.url)
    await rule(
        client,
        tenant,
        name="hot",
        key="t",
        channels=[channel["id"]],
        condition={"type": "threshold", "op": ">", "value": 1},
    )
    count = 30
    for _ in range(count):
        await send(client, tenant, await make_device(tenant), t=5)
    await eventually(lambda: _pending(store, count))

    hook.start()
    senders = [Dispatcher(store, outbound=LOCAL), Dispatcher(store, outbound=LOCAL)]
    try:

        async def drain(sender: Dispatcher) -> int:
            sent = 0
            while attempted := await sender.deliver_due():
                sent += attempted
            return sent

        done = await asyncio.gather(*(drain(s) for s in senders))
    finally:
        for sender in senders:
            await sender.close()
        hook.stop()
    assert sum(done) == count
    keys = Counter(r.headers["Idempotency-Key"] for r in hook.requests)
    assert len(keys) == count and set(keys.values()) == {1}


def _events(hook: WebhookReceiver) -> set[str]:
    return {r.headers["X-Telemetra-Event"] for r in hook.requests}


async def _pending(store, count: int) -> bool:
    return (await store.alerts.outbox_counts()).get("pending") == count

"""Channels whose webhooks or mail servers lead to private addresses: refused at creation (422) and, since DNS
and the operator's allowance can change, refused again at every delivery; the delivery log keeps a status
and a short reason, never what the receiver answered."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.api.test_alerts import eventually, rule, send
from tests.api.test_notifications import deliveries
from tests.brokers import free_port
from tests.conftest import TEST_ADMIN_KEY
from tests.receivers import WebhookReceiver, smtp_servers

LOOPBACK_ALLOWED = "127.0.0.1/32,localhost"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # the policy is the same on both backends; the outbox is tested on both elsewhere


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        admin_key=TEST_ADMIN_KEY,
        _env_file=None,
        activity_flush_interval_s=3600,
        notify_interval_s=0.05,
        notify_backoff_base_s=0.2,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings, store, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app on ``store`` with these settings changed, as a process started with them would."""
    app = create_app(settings.model_copy(update=overrides), store)
    async with app.router.lifespan_context(app):
        await app.state.services.keys.ensure_admin_key(settings.admin_key)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield client


async def tenant_in(client: httpx.AsyncClient) -> dict:
    resp = await client.post(
        "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": f"t-{uuid.uuid4().hex[:8]}"}
    )
    assert resp.status_code == 201, resp.text
    tenant = resp.json()
    tenant["headers"] = {"X-API-Key": tenant["api_key"]}
    return tenant


async def device_in(client: httpx.AsyncClient, tenant: dict) -> dict:
    resp = await client.post("/api/v1/devices/register", headers=tenant["headers"], json={"name": "pump"})
    assert resp.status_code == 201, resp.text
    return resp.json()["device"]


async def create(client: httpx.AsyncClient, tenant: dict, kind: str, config: dict) -> httpx.Response:
    return await client.post(
        "/api/v1/channels",
        headers=tenant["headers"],
        json={"name": f"c-{uuid.uuid4().hex[:8]}", "kind": kind, "config": config},
    )


def mail_config(host: str, port: int, **fields: Any) -> dict:
    return {
        "host": host,
        "port": port,
        "security": "none",
        "sender": "alerts@example.com",
        "recipients": ["oncall@example.com"],
        "timeout_s": 2,
        **fields,
    }


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver("unknown yet").start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp_server():
    yield from smtp_servers()


WEBHOOK_HOSTS = [
    "127.0.0.1",
    "localhost",
    "0x7f000001",
    "2130706433",
    "127.1",
    "0.0.0.0",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "169.254.169.254",
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "100.64.0.1",
    "[fe80::1]",
    "[fd00::1]",
]


async def test_a_webhook_to_a_private_address_is_refused_at_creation(client, make_tenant) -> None:
    tenant = await make_tenant()
    for host in WEBHOOK_HOSTS:
        resp = await create(client, tenant, "webhook", {"url": f"http://{host}:8080/hook"})
        assert resp.status_code == 422, (host, resp.text)
        assert resp.json()["code"] == "outbound_address_refused", host
        assert "not a public address" in resp.json()["message"]
    # 0177.0.0.1 (octal) is not a URL that httpx reads at all.
    resp = await create(client, tenant, "webhook", {"url": "http://0177.0.0.1/hook"})
    assert resp.status_code == 422 and resp.json()["code"] == "invalid_channel"
    assert (await client.get("/api/v1/channels", headers=tenant["headers"])).json()["channels"] == []


async def test_a_mail_server_at_a_private_address_or_odd_port_is_refused_at_creation(client, make_tenant) -> None:
    tenant = await make_tenant()
    for host, port in [
        ("127.0.0.1", 587),
        ("localhost", 25),
        ("169.254.169.254", 25),
        ("[::1]", 587),
        ("::1", 587),
        ("8.8.8.8", 6379),
        ("8.8.8.8", 22),
    ]:
        resp = await create(client, tenant, "email", mail_config(host, port))
        assert resp.status_code == 422, (host, port, resp.text)
        assert resp.json()["code"] in ("outbound_address_refused", "invalid_channel"), resp.text
    assert (await create(client, tenant, "email", mail_config("8.8.8.8", 587))).status_code == 201


async def test_a_ca_file_outside_the_ca_directory_is_refused_alike_whether_it_exists(
    settings, store, tmp_path, certificates
) -> None:
    cas = tmp_path / "cas"
    cas.mkdir()
    os.symlink(certificates.ca_file, cas / "linked.pem")  # a link that leads out is out, wherever it starts
    os.symlink("/etc", cas / "etc")
    async with serving(settings, store, outbound_ca_dir=str(cas)) as client:
        tenant = await tenant_in(client)
        messages = set()
        for ca_file in (
            "/etc/passwd",
            "/etc/no-such-file",
            "../../../../etc/passwd",
            "../no-such-file",
            "etc/passwd",
            "etc/no-such-file",
            "linked.pem",
            certificates.ca_file,
        ):
            resp = await create(client, tenant, "email", mail_config("8.8.8.8", 465, security="tls", ca_file=ca_file))
            assert resp.status_code == 422, (ca_file, resp.text)
            messages.add(resp.json()["message"])
        assert len(messages) == 1, messages  # nothing tells whether the file exists
        assert "TELEMETRA_OUTBOUND_CA_DIR" in messages.pop()
    async with serving(settings, store) as client:  # no CA directory: no ca_file at all
        tenant = await tenant_in(client)
        resp = await create(client, tenant, "email", mail_config("8.8.8.8", 465, security="tls", ca_file="x.pem"))
        assert resp.status_code == 422 and "none is configured" in resp.json()["message"]


async def test_channels_allowed_when_created_are_refused_once_the_allowance_is_gone(
    settings, store, hook, smtp_server
) -> None:
    server = smtp_server()
    async with serving(settings, store, outbound_allow=LOOPBACK_ALLOWED, notify_interval_s=3600) as client:
        tenant = await tenant_in(client)
        device = await device_in(client, tenant)
        channels = []
        for host in ("127.0.0.1", "localhost"):
            resp = await create(client, tenant, "webhook", {"url": f"http://{host}:{hook.port}/hook", "timeout_s": 2})
            assert resp.status_code == 201, resp.text
            channels.append(resp.json()["channel"])
        resp = await create(client, tenant, "email", mail_config("127.0.0.1", server.port))
        assert resp.status_code == 201, resp.text
        channels.append(resp.json()["channel"])
        await rule(
            client,
            tenant,
            name="hot",
            key="t",
            channels=[c["id"] for c in channels],
            condition={"type": "threshold", "op": ">", "value": 1},
        )
        await send(client, tenant, device, t=5)
        await eventually(lambda: _outbox(store, "pending", 3))  # the dispatcher waits: interval of an hour

    async with serving(settings, store) as client:  # restarted without TELEMETRA_OUTBOUND_ALLOW
        await eventually(lambda: _outbox(store, "failed", 3))
        for channel in channels:
            (attempt,) = await deliveries(client, tenant, channel)
            assert not attempt["ok"] and attempt["status_code"] is None
            assert attempt["error"].startswith("address refused: ") and "not a public address" in attempt["error"]
    assert hook.requests == [] and server.handler.received == []


async def test_the_delivery_log_keeps_the_status_not_the_answer(settings, store, hook) -> None:
    hook.status, hook.reply_body = 500, b"Traceback: connect(db.internal:5432, password='hunter2') failed"
    async with serving(settings, store, outbound_allow=LOOPBACK_ALLOWED) as client:
        tenant = await tenant_in(client)
        device = await device_in(client, tenant)
        body = (await create(client, tenant, "webhook", {"url": hook.url, "timeout_s": 2})).json()
        hook.secret, channel = body["secret"], body["channel"]
        closed = (await create(client, tenant, "webhook", {"url": f"http://127.0.0.1:{free_port()}/x"})).json()
        await rule(
            client,
            tenant,
            name="hot",
            key="t",
            channels=[channel["id"], closed["channel"]["id"]],
            condition={"type": "threshold", "op": ">", "value": 1},
        )
        await send(client, tenant, device, t=5)
        first = (await eventually(lambda: deliveries(client, tenant, channel)))[-1]
        assert first["status_code"] == 500 and first["error"] == "HTTP 500 Internal Server Error"
        refused = (await eventually(lambda: deliveries(client, tenant, closed["channel"])))[-1]
        assert refused["error"] == "could not connect"  # no errno, no library text


async def test_a_redirect_to_a_private_address_is_not_followed_nor_shown(settings, store, hook) -> None:
    hook.status, hook.reply_headers = 307, {"Location": "http://169.254.169.254/latest/meta-data/iam"}
    async with serving(settings, store, outbound_allow=LOOPBACK_ALLOWED) as client:
        tenant = await tenant_in(client)
        device = await device_in(client, tenant)
        body = (await create(client, tenant, "webhook", {"url": hook.url, "timeout_s": 2})).json()
        hook.secret, channel = body["secret"], body["channel"]
        await rule(
            client,
            tenant,
            name="hot",
            key="t",
            channels=[channel["id"]],
            condition={"type": "threshold", "op": ">", "value": 1},
        )
        await send(client, tenant, device, t=5)
        (attempt,) = await eventually(lambda: deliveries(client, tenant, channel))
        assert attempt["status_code"] == 307 and not attempt["ok"]
        assert attempt["error"].startswith("HTTP 307: redirects are not followed")
        assert "169.254" not in attempt["error"]
    assert [r.path for r in hook.requests] == ["/hook"]


async def _outbox(store, state: str, count: int) -> bool:
    return (await store.alerts.outbox_counts()).get(state) == count

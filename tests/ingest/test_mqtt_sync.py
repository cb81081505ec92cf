"""`telemetra mqtt-sync`: the registry's devices log in to a real Mosquitto with their keys and stay in their lane.

Each test runs a Mosquitto of its own on a free port, configured with the files the sync wrote, and
Telemetra's MQTT source logged in as the service user: what a device publishes under another device's id
never reaches the database.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from telemetra.api.app import create_app
from telemetra.cli import app as cli
from telemetra.domain.mosquitto_auth import mosquitto_hash, password_file, verify_mosquitto_hash
from telemetra.domain.timeparse import utcnow
from telemetra.registry.broker_sync import BrokerFiles, sync_mosquitto_files
from telemetra.runtime import build_services
from telemetra.settings import Settings
from tests.brokers import OwnProcess, connect_session, free_port, start_mosquitto

SERVICE_USER, SERVICE_PASSWORD = "telemetra-svc", "svc-" + uuid.uuid4().hex
CONNACK_REFUSED = {134, 135}


def broker_files(tmp_path: Path) -> BrokerFiles:
    return BrokerFiles(tmp_path / "passwd", tmp_path / "acl", SERVICE_USER, SERVICE_PASSWORD)


def authenticated_broker(tmp_path: Path, files: BrokerFiles):
    # Run as whoever runs the tests: as root, Mosquitto would switch to its own user, which cannot read
    # pytest's private tmp directory.
    return start_mosquitto(
        tmp_path,
        "\n".join(
            [
                "allow_anonymous false",
                f"password_file {files.password_path}",
                f"acl_file {files.acl_path}",
                f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            ]
        ),
    )


def refused(port: int, username: str, password: str) -> bool:
    session, reason = connect_session(port, username, password)
    session.close()
    return reason.is_failure and reason.value in CONNACK_REFUSED


def publish_once(port: int, username: str, password: str, topic: str, body: dict) -> None:
    session, reason = connect_session(port, username, password)
    try:
        assert not reason.is_failure, reason
        session.publish(topic, json.dumps(body).encode())
    finally:
        session.close()


async def wait_until(predicate, timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_registry_keys_open_the_broker_and_a_device_cannot_publish_as_another(
    settings: Settings, store, tmp_path: Path
) -> None:
    bootstrap = build_services(settings, store)
    tenant, _, _ = await bootstrap.tenants.create("acme")
    device_a, key_a = await bootstrap.devices.register(tenant.id, name="a", device_id=f"a-{uuid.uuid4().hex[:6]}")
    device_b, key_b = await bootstrap.devices.register(tenant.id, name="b", device_id=f"b-{uuid.uuid4().hex[:6]}")
    colon, _ = await bootstrap.devices.register(tenant.id, name="c", device_id="plant:7")
    files = broker_files(tmp_path)

    report = await sync_mosquitto_files(store, files, utcnow())

    assert report.devices == 2 and report.skipped == [colon.id] and report.changed
    text = files.password_path.read_text()
    assert key_a not in text and key_b not in text  # hashes only
    assert oct(files.password_path.stat().st_mode & 0o777) == "0o600"
    broker = authenticated_broker(tmp_path, files)
    try:
        settings.mqtt_url = f"mqtt://127.0.0.1:{broker.port}"
        settings.mqtt_username, settings.mqtt_password = SERVICE_USER, SERVICE_PASSWORD
        settings.mqtt_client_id = f"telemetra-{uuid.uuid4().hex[:8]}"
        app = create_app(settings, store)
        async with app.router.lifespan_context(app):
            assert refused(broker.port, device_a.id, key_b)  # a key opens only its own device
            assert refused(broker.port, device_a.id, "tlmd_wrong")
            # Mosquitto 2.0.11 answers a denied PUBLISH of an MQTT 3.1.1 client with a PUBACK that paho
            # takes as a protocol error and closes the connection: the forged message goes on a session
            # of its own. Its PUBACK means the broker has already decided; the marker comes after it.
            publish_once(broker.port, device_a.id, key_a, f"devices/{device_b.id}/telemetry", {"data": {"t": -99}})
            publish_once(broker.port, device_a.id, key_a, f"devices/{device_a.id}/telemetry", {"data": {"t": 21.5}})

            async def a_committed() -> bool:
                return (await store.list_messages(device_pk=device_a.pk, limit=1))[1] == 1

            await wait_until(a_committed)
            # Telemetra's one subscription gets messages in the order the broker routed them, and commits
            # them in that order: had the forged message been let through, it would be stored by now.
            assert (await store.list_messages(device_pk=device_b.pk, limit=1))[1] == 0
    finally:
        broker.stop()


async def test_rotation_and_revocation_reach_the_broker_on_the_next_sync(
    settings: Settings, store, tmp_path: Path
) -> None:
    services = build_services(settings, store)
    tenant, _, _ = await services.tenants.create("acme")
    device, old_key = await services.devices.register(tenant.id, name="a", device_id=f"a-{uuid.uuid4().hex[:6]}")
    files = broker_files(tmp_path)
    await sync_mosquitto_files(store, files, utcnow())
    broker = authenticated_broker(tmp_path, files)
    try:
        session, reason = connect_session(broker.port, device.id, old_key)
        session.close()
        assert not reason.is_failure, reason
        unchanged = await sync_mosquitto_files(store, files, utcnow(), reload_pid=broker.proc.pid)
        assert not unchanged.changed and not unchanged.reloaded  # nothing new: the broker is left alone

        _, new_key = await services.keys.rotate_device_key(device)
        report = await sync_mosquitto_files(store, files, utcnow(), reload_pid=broker.proc.pid)

        assert report.changed and report.reloaded

        async def old_key_refused() -> bool:  # SIGHUP is handled asynchronously by the broker
            return refused(broker.port, device.id, old_key)

        await wait_until(old_key_refused, timeout_s=5)
        session, reason = connect_session(broker.port, device.id, new_key)
        session.close()
        assert not reason.is_failure, reason
    finally:
        broker.stop()


def test_cli_writes_the_files_and_needs_the_service_login(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    args = ["mqtt-sync", "--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"), "--json"]

    missing = runner.invoke(cli, args)
    assert missing.exit_code == 2 and "TELEMETRA_MQTT_PASSWORD" in missing.output
    assert not (tmp_path / "passwd").exists()

    monkeypatch.setenv("TELEMETRA_MQTT_USERNAME", SERVICE_USER)
    monkeypatch.setenv("TELEMETRA_MQTT_PASSWORD", SERVICE_PASSWORD)
    created = runner.invoke(cli, ["tenant", "create", "acme", "--json"])
    assert created.exit_code == 0, created.output
    device = runner.invoke(cli, ["device", "create", "--tenant", "acme", "--id", "meter-1", "--json"])
    assert device.exit_code == 0, device.output
    device_key = json.loads(device.stdout)["api_key"]

    result = runner.invoke(cli, args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"devices": 1, "skipped": [], "changed": True, "reloaded": False}
    lines = dict(line.split(":", 1) for line in (tmp_path / "passwd").read_text().splitlines())
    assert set(lines) == {"meter-1", SERVICE_USER}
    assert verify_mosquitto_hash(device_key, lines["meter-1"])
    assert verify_mosquitto_hash(SERVICE_PASSWORD, lines[SERVICE_USER])
    assert f"user {SERVICE_USER}" in (tmp_path / "acl").read_text()


async def test_the_shipped_mosquitto_config_starts_and_admits_synced_devices(
    settings: Settings, store, tmp_path: Path
) -> None:
    services = build_services(settings, store)
    tenant, _, _ = await services.tenants.create("acme")
    device, key = await services.devices.register(tenant.id, name="a", device_id=f"a-{uuid.uuid4().hex[:6]}")
    files = broker_files(tmp_path)
    await sync_mosquitto_files(store, files, utcnow())
    shipped = (Path(__file__).parents[2] / "deploy" / "mosquitto" / "telemetra.conf").read_text()
    port = free_port()
    # The shipped file, with only its port and paths moved into the test's directory.
    conf = (
        shipped.replace("listener 1883", f"listener {port} 127.0.0.1")
        .replace("/etc/mosquitto/telemetra.passwd", str(files.password_path))
        .replace("/etc/mosquitto/telemetra.acl", str(files.acl_path))
        .replace("/var/lib/mosquitto/", f"{tmp_path}/")
        + f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
    )
    assert conf.count(str(tmp_path)) == 3
    (tmp_path / "shipped.conf").write_text(conf)
    broker = OwnProcess(["/usr/sbin/mosquitto", "-c", str(tmp_path / "shipped.conf")], port, tmp_path / "log")
    try:
        assert refused(port, device.id, "tlmd_wrong")
        publish_once(port, device.id, key, f"devices/{device.id}/telemetry", {"data": {"t": 1}})
    finally:
        broker.stop()
    assert "Error" not in (tmp_path / "log").read_text()


@pytest.mark.parametrize("send_topic", ["orders/{device_id}/switch", "plant/switches"])
async def test_the_acl_follows_the_send_command_topic(settings: Settings, store, tmp_path: Path, send_topic) -> None:
    """The worker may publish seed 001's orders on TELEMETRA_SEND_COMMAND_TOPIC (the ACL granted only
    `send_command` whatever the setting), and a device reads the orders meant for it, never another's: with
    `{device_id}` in the topic each device reads its own; one topic for all is read by no device."""
    services = build_services(settings, store)
    tenant, _, tenant_key = await services.tenants.create("acme")
    device_a, key_a = await services.devices.register(tenant.id, name="a", device_id=f"a-{uuid.uuid4().hex[:6]}")
    device_b, key_b = await services.devices.register(tenant.id, name="b", device_id=f"b-{uuid.uuid4().hex[:6]}")
    files = BrokerFiles(tmp_path / "passwd", tmp_path / "acl", SERVICE_USER, SERVICE_PASSWORD, send_topic)
    await sync_mosquitto_files(store, files, utcnow())
    wildcard = send_topic.replace("{device_id}", "+")
    # A gateway that reads every order, with a login the operator adds by hand (the sync writes none).
    gateway_password = uuid.uuid4().hex
    with files.password_path.open("a") as passwd:
        passwd.write(password_file([("gateway", mosquitto_hash(gateway_password))]))
    with files.acl_path.open("a") as acl:
        acl.write(f"\nuser gateway\ntopic read {wildcard}\ntopic write devices/+/commands\n")
    broker = authenticated_broker(tmp_path, files)
    sessions = []
    try:
        gateway, reason = connect_session(broker.port, "gateway", gateway_password)
        assert not reason.is_failure, reason
        reader_a, reason_a = connect_session(broker.port, device_a.id, key_a)
        reader_b, reason_b = connect_session(broker.port, device_b.id, key_b)
        sessions += [gateway, reader_a, reader_b]
        assert not reason_a.is_failure and not reason_b.is_failure
        for session in sessions:
            session.subscribe(wildcard)
        reader_a.subscribe(f"devices/{device_a.id}/commands")  # where the marker comes
        settings.mqtt_url = f"mqtt://127.0.0.1:{broker.port}"
        settings.mqtt_username, settings.mqtt_password = SERVICE_USER, SERVICE_PASSWORD
        settings.mqtt_client_id = f"telemetra-{uuid.uuid4().hex[:8]}"
        settings.send_command_topic = send_topic
        app = create_app(settings, store)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                for device in (device_b, device_a):
                    resp = await client.post(
                        "/send", headers={"X-API-Key": tenant_key}, json={"device_id": device.id, "switch": True}
                    )
                    assert resp.status_code == 200, resp.text
            order_b = (send_topic.replace("{device_id}", device_b.id), _order(device_b.id))
            order_a = (send_topic.replace("{device_id}", device_a.id), _order(device_a.id))
            # The worker's login may write both orders: the gateway receives them, in order.
            assert gateway.messages_until(order_a) == [order_b, order_a]
            marker = (f"devices/{device_a.id}/commands", b'{"marker": 1}')
            gateway.publish(*marker)
            if "{device_id}" in send_topic:
                assert reader_a.messages_until(marker) == [order_a, marker]  # its own order, not B's
                assert reader_b.messages_until(order_b) == [order_b]
            else:
                assert reader_a.messages_until(marker) == [marker]  # every device's orders: no device reads them
        written = files.acl_path.read_text()
        assert f"user {SERVICE_USER}\n" in written and f"topic write {wildcard}\n" in written
        assert "send_command" not in written and "{device_id}" not in written
    finally:
        for session in sessions:
            session.close()
        broker.stop()


def _order(device_id: str) -> bytes:
    return json.dumps({"device_id": device_id, "devId": device_id, "switch": True}, separators=(",", ":")).encode()

"""Mosquitto with the password and ACL files Telemetra writes: devices log in with their key, stay in their lane.

A broker of our own on a free port (the shared one on 1883 is never touched). Negative checks do not sleep:
a forbidden message is sent first and an allowed marker after it on the same connection; Mosquitto handles
one connection's packets in order and delivers to a subscriber in order, so once the marker has arrived the
forbidden message would have arrived before it had it been let through.
"""

from __future__ import annotations

import os
import pwd
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from telemetra.domain.keys import generate_key
from telemetra.domain.mosquitto_auth import acl_file, mosquitto_hash, password_file
from tests.brokers import MqttSession, OwnProcess, connect_session, free_port

MOSQUITTO = "/usr/sbin/mosquitto"
SERVICE_USER = "telemetra-worker"
DEVICE_A, DEVICE_B = "A", "B"
TIMEOUT_S = 10.0
CONNACK_REFUSED = {134, 135}  # MQTT 5 codes paho maps 3.1.1's "bad user name or password" / "not authorised" to


@dataclass
class Broker:
    process: OwnProcess
    log: Path
    passwords: dict[str, str]

    @property
    def port(self) -> int:
        return self.process.port

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"


def require_mosquitto() -> None:
    # `make test` installs Mosquitto (scripts/ensure-services.sh); without it this test fails, never skips.
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.fail(f"{MOSQUITTO} is required for the broker ACL test; `make test` installs it", pytrace=False)


def write_broker_files(directory: Path, passwords: dict[str, str], port: int) -> Path:
    (directory / "passwd").write_text(
        password_file((username, mosquitto_hash(password)) for username, password in passwords.items())
    )
    (directory / "acl").write_text(acl_file(SERVICE_USER))
    for name in ("passwd", "acl"):
        (directory / name).chmod(0o600)
    conf = directory / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous false",
                f"password_file {directory / 'passwd'}",
                f"acl_file {directory / 'acl'}",
                "persistence false",
                f"log_dest file {directory / 'mosquitto.log'}",
                "log_type all",
                # Run as whoever runs the tests: started as root, Mosquitto would otherwise switch to the
                # "mosquitto" user, which cannot read the files in pytest's private tmp directory.
                f"user {pwd.getpwuid(os.geteuid()).pw_name}",
                "",
            ]
        )
    )
    return conf


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require_mosquitto()
    passwords = {
        DEVICE_A: generate_key("device"),
        DEVICE_B: generate_key("device"),
        SERVICE_USER: secrets.token_urlsafe(32),
    }
    port = free_port()
    conf = write_broker_files(tmp_path, passwords, port)
    # OwnProcess waits for the port and, in stop(), ends the process by its PID (terminate, wait, kill).
    process = OwnProcess([MOSQUITTO, "-c", str(conf)], port, tmp_path / "mosquitto.stdout")
    try:
        yield Broker(process, tmp_path / "mosquitto.log", passwords)
    finally:
        process.stop()


@pytest.fixture
def connect(broker: Broker) -> Iterator[Callable[..., MqttSession]]:
    """Open sessions on ``broker`` (``connect(username, password=None)``); all are closed afterwards."""
    opened: list[MqttSession] = []

    def open_session(username: str, password: str | None = None) -> MqttSession:
        session, reason = connect_session(broker.port, username, password or broker.passwords[username])
        opened.append(session)
        assert not reason.is_failure, f"{username} refused: {reason}\n{broker.log_tail()}"
        return session

    yield open_session
    for session in opened:
        session.close()


@pytest.mark.parametrize("case", ["wrong key", "another device's key", "unknown user"])
def test_a_wrong_password_is_refused_atconnect_session(broker: Broker, case: str) -> None:
    username, password = {
        "wrong key": (DEVICE_A, "tlmd_not-the-key"),
        "another device's key": (DEVICE_A, broker.passwords[DEVICE_B]),  # a key opens only its own device
        "unknown user": ("stranger", "whatever"),
    }[case]
    session, reason = connect_session(broker.port, username, password)
    try:
        assert reason.is_failure and reason.value in CONNACK_REFUSED, reason
    finally:
        session.close()


def test_a_device_publishes_to_the_service_directly_and_through_a_shared_subscription(connect) -> None:
    service, worker = connect(SERVICE_USER), connect(SERVICE_USER)
    # The shared subscription needs no $share rule: Mosquitto checks READ against the message's topic.
    assert not service.subscribe("devices/+/telemetry")[0].is_failure
    assert not worker.subscribe("$share/telemetra/devices/+/telemetry")[0].is_failure
    device = connect(DEVICE_A)
    reading = ("devices/A/telemetry", b'{"t": 21.5}')

    device.publish(*reading)

    assert service.messages_until(reading) == [reading]
    assert worker.messages_until(reading) == [reading]


def test_a_device_cannot_publish_under_another_id(connect) -> None:
    service, worker = connect(SERVICE_USER), connect(SERVICE_USER)
    service.subscribe("devices/+/telemetry")
    worker.subscribe("$share/telemetra/devices/+/telemetry")
    device = connect(DEVICE_A)
    forged, marker = ("devices/B/telemetry", b'{"t": -99}'), ("devices/A/telemetry", b'{"marker": 1}')

    device.publish(*forged)  # MQTT 3.1.1: acknowledged, then silently dropped by the broker
    device.publish(*marker)

    assert service.messages_until(marker) == [marker]
    assert worker.messages_until(marker) == [marker]


def test_a_device_cannot_read_another_devices_commands(connect) -> None:
    device_a, device_b, service = connect(DEVICE_A), connect(DEVICE_B), connect(SERVICE_USER)
    # Mosquitto 2.0 grants any SUBSCRIBE under an acl_file and filters on delivery, so whatever A's SUBACK
    # says, what matters is that nothing of B's reaches it.
    device_a.subscribe("devices/B/commands")
    device_a.subscribe("devices/A/commands")
    device_b.subscribe("devices/B/commands")
    for_b, for_a = ("devices/B/commands", b'{"cmd": "reboot"}'), ("devices/A/commands", b'{"cmd": "ping"}')

    service.publish(*for_b)
    service.publish(*for_a)

    assert device_b.messages_until(for_b) == [for_b]  # the command was really sent, and B may read it
    assert device_a.messages_until(for_a) == [for_a]

"""Brokers for tests: the shared ones on their usual ports, or our own on a free port, stopped by PID."""

from __future__ import annotations

import getpass
import os
import queue
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

MQTT_URL = os.environ.get("TELEMETRA_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
NATS_URL = os.environ.get("TELEMETRA_TEST_NATS_URL", "nats://127.0.0.1:4222")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


def require_port(url_port: int, what: str) -> None:
    """Fail (never skip) when a shared service is missing."""
    try:
        wait_for_port(url_port, timeout_s=3)
    except AssertionError as exc:
        raise AssertionError(
            f"{what} is required on 127.0.0.1:{url_port} for this test; `make test` starts it"
        ) from exc


class OwnProcess:
    """A server process of our own; stop() ends it by its PID."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args, self.port, self.log = args, port, log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port)
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{args[0]} did not start: {log.read_text()[-2000:]}") from exc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()


def start_mosquitto(tmp_path: Path, extra_config: str = "") -> OwnProcess:
    """Start a Mosquitto of our own (anonymous unless ``extra_config`` says otherwise)."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\npersistence false\nmax_queued_messages 0\n"
        f"{extra_config or 'allow_anonymous true'}\n"
    )
    return OwnProcess(["/usr/sbin/mosquitto", "-c", str(conf)], port, tmp_path / "mosquitto.log")


DEPLOY_MOSQUITTO_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "telemetra.conf"
# Lines of the shipped configuration a test broker cannot take as they are: its port, users and paths.
_LOCAL_OPTIONS = ("listener", "allow_anonymous", "password_file", "acl_file", "persistence_location")


def start_persistent_mosquitto(tmp_path: Path) -> OwnProcess:
    """Start a Mosquitto of our own with the project's configuration (deploy/mosquitto/telemetra.conf):
    persistence on, so that sessions, subscriptions and queued messages survive ``restart_broker``."""
    port = free_port()
    data = tmp_path / "mosquitto-data"
    data.mkdir()
    shipped = [
        line
        for line in DEPLOY_MOSQUITTO_CONF.read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split()[0] not in _LOCAL_OPTIONS
    ]
    conf = tmp_path / "mosquitto.conf"
    # Started as root, Mosquitto would switch to its own user, which cannot write in our temporary directory;
    # `user` naming the current user keeps it (and a user that is not root is kept anyway).
    conf.write_text(
        "\n".join(
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                f"user {getpass.getuser()}",
                f"persistence_location {data}/",
                *shipped,
                "",
            ]
        )
    )
    return OwnProcess(["/usr/sbin/mosquitto", "-c", str(conf)], port, tmp_path / "mosquitto.log")


def restart_broker(broker: OwnProcess) -> OwnProcess:
    """Stop the broker by its PID (SIGTERM: Mosquitto saves its persistence file) and start it again on the
    same port with the same configuration."""
    broker.stop()
    return OwnProcess(broker.args, broker.port, broker.log.with_name(broker.log.stem + "-again.log"))


def start_nats(tmp_path: Path, *, mqtt_port: int | None = None, tls: tuple[str, str, str] | None = None) -> OwnProcess:
    """Start a NATS server with JetStream of our own (and its MQTT gateway when ``mqtt_port`` is given).

    ``tls``: (CA file, certificate file, key file): the server speaks TLS only and requires a client
    certificate signed by that CA."""
    port = free_port()
    conf = tmp_path / "nats.conf"
    mqtt = f"mqtt {{\n  listen: 127.0.0.1:{mqtt_port}\n}}\n" if mqtt_port else ""
    tls_block = (
        (f'tls {{\n  ca_file: "{tls[0]}"\n  cert_file: "{tls[1]}"\n  key_file: "{tls[2]}"\n  verify: true\n}}\n')
        if tls
        else ""
    )
    conf.write_text(
        f"listen: 127.0.0.1:{port}\nserver_name: telemetra_test_{port}\n"
        f'jetstream {{\n  store_dir: "{tmp_path / "js"}"\n}}\n{mqtt}{tls_block}'
    )
    server = OwnProcess(["/usr/sbin/nats-server", "-c", str(conf)], port, tmp_path / "nats.log")
    if mqtt_port:
        wait_for_port(mqtt_port)
    return server


MQTT_TIMEOUT_S = 10.0


@dataclass
class MqttSession:
    """One connected paho client; what it receives lands in ``messages`` as (topic, payload)."""

    client: paho.Client
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    subacks: queue.Queue[tuple[int, list[paho.ReasonCode]]] = field(default_factory=queue.Queue)

    def subscribe(self, topic: str) -> list[paho.ReasonCode]:
        _, mid = self.client.subscribe(topic, qos=1)
        got_mid, reason_codes = self.subacks.get(timeout=MQTT_TIMEOUT_S)
        assert got_mid == mid
        return reason_codes

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(MQTT_TIMEOUT_S)

    def messages_until(self, marker: tuple[str, bytes]) -> list[tuple[str, bytes]]:
        """Return every message received up to and including ``marker``; fail if it does not come."""
        seen: list[tuple[str, bytes]] = []
        while marker not in seen:
            try:
                seen.append(self.messages.get(timeout=MQTT_TIMEOUT_S))
            except queue.Empty:
                raise AssertionError(f"{marker} not received; got {seen}") from None
        return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_session(port: int, username: str, password: str) -> tuple[MqttSession, paho.ReasonCode]:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
    )
    session = MqttSession(client)
    connacks: queue.Queue[paho.ReasonCode] = queue.Queue()
    messages, subacks = session.messages, session.subacks
    # The callbacks hold the queues, not the session: a client <-> session cycle would leave the client to
    # the garbage collector, which may finalise paho's internal socket pair before the client closes it.
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, _flags, reason, _props: connacks.put(reason)
    client.on_message = lambda _c, _u, message: messages.put((message.topic, message.payload))
    client.on_subscribe = lambda _c, _u, mid, reasons, _props: subacks.put((mid, reasons))
    client.connect("127.0.0.1", port)
    client.loop_start()
    return session, connacks.get(timeout=MQTT_TIMEOUT_S)

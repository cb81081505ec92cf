"""TLS: `telemetra serve --tls-cert --tls-key` answers HTTPS; the MQTT and NATS sources read their broker over
TLS, with a client certificate, and refuse a broker they cannot verify. Certificates are made per run; Mosquitto
and NATS are our own."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import ssl
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable

import httpx
import nats
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemetra.nats_connection import BrokerUnverified, NatsTls, connect_nats
from telemetra.store import store_from_url
from tests.brokers import MQTT_TIMEOUT_S, start_mosquitto, start_nats
from tests.certs import CertificateFiles, make_certificates
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def _tenant_with_boiler(http: httpx.Client) -> dict:
    """A tenant and its device `boiler-1`; returns the tenant's key headers."""
    tenant = http.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "acme"}).json()
    owner = {"X-API-Key": tenant["api_key"]}
    http.post("/api/v1/devices/register", headers=owner, json={"name": "boiler", "id": "boiler-1"})
    return owner


def _latest(http: httpx.Client, owner: dict, device_id: str) -> dict:
    latest: dict = {}
    deadline = time.monotonic() + MQTT_TIMEOUT_S
    while not latest and time.monotonic() < deadline:
        latest = http.get(f"/api/v1/devices/{device_id}/latest", headers=owner).json()["latest"]
        time.sleep(0.05)
    return latest


def _boiler_latest_through(sqlite_url: str, env: dict[str, str], publish: Callable[[bytes], None]) -> dict:
    """Start `telemetra serve` with ``env``, register `boiler-1`, ``publish`` a temperature the way its broker
    takes it, and return the device's latest values once they show."""
    server = Server(sqlite_url, env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, **env})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            owner = _tenant_with_boiler(http)
            publish(b'{"data": {"temperature": 61.5}}')
            return _latest(http, owner, "boiler-1")
    finally:
        server.stop()


def _tls_settings(broker: str, url: str, ca_file: str, certificates: CertificateFiles) -> dict[str, str]:
    """Telemetra's settings to read ``broker`` (mqtt or nats) at ``url`` trusting ``ca_file``, with our client
    certificate."""
    prefix = f"TELEMETRA_{broker.upper()}"
    return {
        f"{prefix}_URL": url,
        f"{prefix}_CA_FILE": ca_file,
        f"{prefix}_CERT_FILE": certificates.client_cert_file,
        f"{prefix}_KEY_FILE": certificates.client_key_file,
    }


def _another_ca(tmp_path) -> CertificateFiles:
    """Certificates from a CA that signed none of the brokers'."""
    (tmp_path / "other").mkdir()
    return make_certificates(tmp_path / "other")


def test_serve_answers_https_only(sqlite_url: str, certificates: CertificateFiles) -> None:
    server = Server(
        sqlite_url,
        "--tls-cert",
        certificates.cert_file,
        "--tls-key",
        certificates.key_file,
        ca_file=certificates.ca_file,
    )
    try:
        assert server.url.startswith("https://")
        with httpx.Client(base_url=server.url, verify=certificates.client_context(), timeout=10) as https:
            health = https.get("/health")
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https://", "http://") + "/health", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust our CA
            httpx.get(server.url + "/health", timeout=5)
    finally:
        server.stop()

    assert health.status_code == 200
    assert health.headers["Strict-Transport-Security"] == "max-age=31536000"


def _tls_broker(tmp_path, certificates: CertificateFiles):
    return start_mosquitto(
        tmp_path,
        extra_config=(
            f"cafile {certificates.ca_file}\ncertfile {certificates.cert_file}\nkeyfile {certificates.key_file}\n"
            "require_certificate true\nallow_anonymous true\n"
            # Run as us: the default user `mosquitto` cannot read the certificates in our temporary folder.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}"
        ),
    )


def _publish_over_tls(port: int, certificates: CertificateFiles, topic: str, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}")
    client.tls_set(
        ca_certs=certificates.ca_file, certfile=certificates.client_cert_file, keyfile=certificates.client_key_file
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(MQTT_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def test_mqtt_source_reads_a_tls_broker_with_a_client_certificate(
    tmp_path, sqlite_url: str, certificates: CertificateFiles
) -> None:
    broker = _tls_broker(tmp_path, certificates)
    try:
        latest = _boiler_latest_through(
            sqlite_url,
            {
                **_tls_settings("mqtt", f"mqtts://127.0.0.1:{broker.port}", certificates.ca_file, certificates),
                "TELEMETRA_MQTT_CLIENT_ID": f"telemetra-tls-{uuid.uuid4().hex[:8]}",
            },
            lambda body: _publish_over_tls(broker.port, certificates, "devices/boiler-1/telemetry", body),
        )
    finally:
        broker.stop()

    assert latest["temperature"]["value"] == 61.5


def test_a_broker_without_a_client_certificate_or_untrusted_is_refused(
    tmp_path, sqlite_url: str, certificates: CertificateFiles
) -> None:
    broker = _tls_broker(tmp_path, certificates)
    other_ca = _another_ca(tmp_path)
    try:
        assert not _connects_without_a_client_certificate(broker.port, certificates)
        # A broker whose certificate does not chain to our CA: the start fails at once, and says why.
        with pytest.raises(AssertionError, match="(?s)server did not start.*CERTIFICATE_VERIFY_FAILED"):
            Server(
                sqlite_url,
                env={**_tls_settings("mqtt", f"mqtts://127.0.0.1:{broker.port}", other_ca.ca_file, certificates)},
            )
    finally:
        broker.stop()


def _connects_without_a_client_certificate(port: int, certificates: CertificateFiles) -> bool:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="no-certificate")
    client.tls_set(ca_certs=certificates.ca_file)
    accepted, closed = threading.Event(), threading.Event()
    client.on_connect = lambda _c, _u, _f, reason, _p: accepted.set() if not reason.is_failure else closed.set()
    client.on_disconnect = lambda *_: closed.set()
    try:
        client.connect("127.0.0.1", port)
    except (ssl.SSLError, OSError):
        return False  # refused during the handshake (TLS 1.2)
    client.loop_start()
    try:
        closed.wait(MQTT_TIMEOUT_S)  # with TLS 1.3 the refusal of the certificate comes after the handshake
        return accepted.is_set()
    finally:
        client.loop_stop()


def _tls_nats(tmp_path, certificates: CertificateFiles):
    return start_nats(tmp_path, tls=(certificates.ca_file, certificates.cert_file, certificates.key_file))


async def _publish_to_jetstream_over_tls(
    port: int, certificates: CertificateFiles, subject: str, payload: bytes
) -> None:
    context = ssl.create_default_context(cafile=certificates.ca_file)
    context.load_cert_chain(certificates.client_cert_file, certificates.client_key_file)
    device = await nats.connect(f"tls://127.0.0.1:{port}", tls=context, connect_timeout=5)
    try:
        await device.jetstream().publish(subject, payload)  # answered once the stream holds it
    finally:
        await device.close()


def test_nats_source_reads_a_tls_server_with_a_client_certificate(
    tmp_path, sqlite_url: str, certificates: CertificateFiles
) -> None:
    server_nats = _tls_nats(tmp_path, certificates)
    # A nats:// URL with a CA file: Telemetra insists on TLS all the same (this server speaks nothing else).
    try:
        latest = _boiler_latest_through(
            sqlite_url,
            {**_tls_settings("nats", f"nats://127.0.0.1:{server_nats.port}", certificates.ca_file, certificates)},
            lambda body: asyncio.run(
                _publish_to_jetstream_over_tls(server_nats.port, certificates, "telemetry.boiler-1", body)
            ),
        )
    finally:
        server_nats.stop()

    assert latest["temperature"]["value"] == 61.5


def test_a_nats_server_that_cannot_be_verified_is_refused(
    tmp_path, sqlite_url: str, certificates: CertificateFiles
) -> None:
    server_nats = _tls_nats(tmp_path, certificates)
    other_ca = _another_ca(tmp_path)
    try:
        with pytest.raises(AssertionError, match="(?s)server did not start.*CERTIFICATE_VERIFY_FAILED"):
            Server(
                sqlite_url,
                env={**_tls_settings("nats", f"tls://127.0.0.1:{server_nats.port}", other_ca.ca_file, certificates)},
            )
    finally:
        server_nats.stop()


async def test_connecting_to_an_unverifiable_nats_server_fails_at_once_with_the_reason(
    tmp_path, certificates: CertificateFiles
) -> None:
    server_nats = _tls_nats(tmp_path, certificates)
    other_ca = _another_ca(tmp_path)
    untrusting = NatsTls(other_ca.ca_file, certificates.client_cert_file, certificates.client_key_file)
    try:
        # nats-py alone would wait for ever after the first failed handshake; a bound keeps a regression short.
        with pytest.raises(BrokerUnverified, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.wait_for(connect_nats(f"tls://127.0.0.1:{server_nats.port}", untrusting), 20)
        trusting = NatsTls(certificates.ca_file, certificates.client_cert_file, certificates.client_key_file)
        connection = await asyncio.wait_for(connect_nats(f"nats://127.0.0.1:{server_nats.port}", trusting), 20)
        assert connection.is_connected
        await connection.close()
    finally:
        server_nats.stop()


async def test_a_nats_server_without_tls_is_refused_when_tls_is_asked_for(tmp_path) -> None:
    plain = start_nats(tmp_path)
    try:
        with pytest.raises(BrokerUnverified, match="offers no TLS"):
            await asyncio.wait_for(connect_nats(f"tls://127.0.0.1:{plain.port}", NatsTls()), 20)
    finally:
        plain.stop()


@pytest.mark.parametrize("via", ["mqtt", "nats"])
def test_the_simulator_sends_over_tls_with_a_client_certificate(
    via: str, tmp_path, sqlite_url: str, certificates: CertificateFiles
) -> None:
    broker = _tls_broker(tmp_path, certificates) if via == "mqtt" else _tls_nats(tmp_path, certificates)
    broker_url = f"{'mqtts' if via == 'mqtt' else 'tls'}://127.0.0.1:{broker.port}"
    server = Server(
        sqlite_url,
        env={
            "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY,
            **_tls_settings(via, broker_url, certificates.ca_file, certificates),
            "TELEMETRA_MQTT_CLIENT_ID": f"telemetra-tls-{uuid.uuid4().hex[:8]}",
        },
    )
    try:
        tenant = httpx.post(
            f"{server.url}/api/v1/admin/tenants",
            headers={"X-API-Key": TEST_ADMIN_KEY},
            json={"name": "sim"},
            timeout=10,
        ).json()

        def simulate(ca_file: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "telemetra",
                    "simulate",
                    "--url",
                    server.url,
                    "--key",
                    tenant["api_key"],
                    "--devices",
                    "4",
                    "--rate",
                    "0",
                    "--count",
                    "40",
                    "--via",
                    via,
                    f"--{via}",
                    broker_url,
                    "--ca-file",
                    ca_file,
                    "--cert-file",
                    certificates.client_cert_file,
                    "--key-file",
                    certificates.client_key_file,
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )

        refused = simulate(_another_ca(tmp_path).ca_file)
        sent = simulate(certificates.ca_file)
        assert sent.returncode == 0, sent.stderr[-2000:]
        report = json.loads(sent.stdout)

        async def stored_after_a_while() -> int:
            store = store_from_url(sqlite_url)
            await store.open()
            try:
                for _ in range(100):  # the broker's ack comes before Telemetra's commit
                    if (await store.list_messages(limit=1))[1] >= 40:
                        break
                    await asyncio.sleep(0.1)
                return (await store.list_messages(limit=1))[1]
            finally:
                await store.close()

        stored = asyncio.run(stored_after_a_while())
    finally:
        server.stop()
        broker.stop()

    assert (report["sent"], report["acked"], report["failed"]) == (40, 40, {})
    assert stored == 40
    # A broker whose certificate does not chain to the CA given: one line saying why, and nothing sent.
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert "Traceback" not in refused.stderr

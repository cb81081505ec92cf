"""TLS: `telemetra serve --tls-cert --tls-key` answers HTTPS; the MQTT source reads a broker over TLS, with a
client certificate, and refuses a broker it cannot verify. Certificates are made per run; Mosquitto is our own."""

from __future__ import annotations

import os
import pwd
import ssl
import threading
import time
import uuid

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.brokers import MQTT_TIMEOUT_S, start_mosquitto
from tests.certs import CertificateFiles, make_certificates
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_serve_answers_https_only(sqlite_url: str, certificates: CertificateFiles) -> None:
    server = Server(sqlite_url, "--tls-cert", certificates.cert_file, "--tls-key", certificates.key_file,
                    ca_file=certificates.ca_file)
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
    return start_mosquitto(tmp_path, extra_config=(
        f"cafile {certificates.ca_file}\ncertfile {certificates.cert_file}\nkeyfile {certificates.key_file}\n"
        "require_certificate true\nallow_anonymous true\n"
        # Run as us: the default user `mosquitto` cannot read the certificates in our temporary folder.
        f"user {pwd.getpwuid(os.geteuid()).pw_name}"))


def _publish_over_tls(port: int, certificates: CertificateFiles, topic: str, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}")
    client.tls_set(ca_certs=certificates.ca_file, certfile=certificates.client_cert_file,
                   keyfile=certificates.client_key_file)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(MQTT_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def test_mqtt_source_reads_a_tls_broker_with_a_client_certificate(tmp_path, sqlite_url: str,
                                                                 certificates: CertificateFiles) -> None:
    broker = _tls_broker(tmp_path, certificates)
    server = Server(sqlite_url, env={
        "TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_MQTT_URL": f"mqtts://127.0.0.1:{broker.port}",
        "TELEMETRA_MQTT_CA_FILE": certificates.ca_file, "TELEMETRA_MQTT_CERT_FILE": certificates.client_cert_file,
        "TELEMETRA_MQTT_KEY_FILE": certificates.client_key_file,
        "TELEMETRA_MQTT_CLIENT_ID": f"telemetra-tls-{uuid.uuid4().hex[:8]}"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            tenant = http.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY},
                               json={"name": "acme"}).json()
            owner = {"X-API-Key": tenant["api_key"]}
            http.post("/api/v1/devices/register", headers=owner, json={"name": "boiler", "id": "boiler-1"})
            _publish_over_tls(broker.port, certificates, "devices/boiler-1/telemetry", b'{"data": {"temperature": 61.5}}')
            latest = {}
            deadline = time.monotonic() + MQTT_TIMEOUT_S
            while not latest and time.monotonic() < deadline:
                latest = http.get("/api/v1/devices/boiler-1/latest", headers=owner).json()["latest"]
                time.sleep(0.05)
    finally:
        server.stop()
        broker.stop()

    assert latest["temperature"]["value"] == 61.5


def test_a_broker_without_a_client_certificate_or_untrusted_is_refused(tmp_path, sqlite_url: str,
                                                                      certificates: CertificateFiles) -> None:
    broker = _tls_broker(tmp_path, certificates)
    (tmp_path / "other").mkdir()
    other_ca = make_certificates(tmp_path / "other")
    try:
        assert not _connects_without_a_client_certificate(broker.port, certificates)
        # A broker whose certificate does not chain to our CA: the start fails at once, and says why.
        with pytest.raises(AssertionError, match="(?s)server did not start.*CERTIFICATE_VERIFY_FAILED"):
            Server(sqlite_url, env={
                "TELEMETRA_MQTT_URL": f"mqtts://127.0.0.1:{broker.port}", "TELEMETRA_MQTT_CA_FILE": other_ca.ca_file,
                "TELEMETRA_MQTT_CERT_FILE": certificates.client_cert_file,
                "TELEMETRA_MQTT_KEY_FILE": certificates.client_key_file})
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

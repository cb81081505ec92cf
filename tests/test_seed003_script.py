"""Seed 003's device script, its requests as written (requests, JSON, a `token` header), against a real
`telemetra serve` over HTTPS."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import requests

from tests.certs import CertificateFiles
from tests.conftest import TEST_ADMIN_KEY
from tests.servers import Server


def test_the_raspberry_pi_script_over_https(sqlite_url: str, certificates: CertificateFiles) -> None:
    server = Server(
        sqlite_url,
        "--tls-cert",
        certificates.cert_file,
        "--tls-key",
        certificates.key_file,
        ca_file=certificates.ca_file,
        env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY},
    )
    try:
        with httpx.Client(base_url=server.url, verify=certificates.client_context(), timeout=10) as admin:
            tenant = admin.post(
                "/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": "fitbuddy"}
            ).json()
            owner = {"X-API-Key": tenant["api_key"]}
            admin.post("/api/v1/devices/register", headers=owner, json={"name": "Raspberry Pi", "id": "raspberry1"})
            admin.put("/api/v1/devices/raspberry1/credentials", headers=owner, json={"password": "password123"})

            # The script, with its URLs pointed at this server and the test CA trusted.
            api_url = server.url + "/data"
            auth_response = requests.post(
                server.url + "/auth/login",
                json={"device_id": "raspberry1", "password": "password123"},
                verify=certificates.ca_file,
                timeout=10,
            )
            token = auth_response.json()["token"]
            sensor_data = {
                "machine_id": 1,
                # The script sends datetime.utcnow().isoformat(): naive UTC (utcnow() is deprecated since 3.12).
                "timestamp": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
                "acceleration_x": 1.2,
                "acceleration_y": 0.5,
                "acceleration_z": -9.81,
                "repetitions": 10,
                "series_time": 30.5,
                "rest_time": 60.0,
            }
            headers = {"token": token, "Content-Type": "application/json"}
            response = requests.post(
                api_url, json=sensor_data, headers=headers, verify=certificates.ca_file, timeout=10
            )

            latest = admin.get("/api/v1/devices/raspberry1/latest", headers=owner).json()["latest"]
    finally:
        server.stop()

    assert auth_response.status_code == 200
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "Données reçues", "device": "raspberry1"}
    assert {k: v["value"] for k, v in latest.items()} == {
        "machine_id": 1,
        "acceleration_x": 1.2,
        "acceleration_y": 0.5,
        "acceleration_z": -9.81,
        "repetitions": 10,
        "series_time": 30.5,
        "rest_time": 60.0,
    }
    assert token not in server.stderr and "password123" not in server.stderr

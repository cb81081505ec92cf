"""Seed 000's edge code, as the seed writes it (no key sent to the objects API), against a real `telemetra serve`
whose objects API is open for two clients; a client not listed, and the mode off, stay closed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import requests

from tests.conftest import TEST_ADMIN_KEY

KEYLESS_ROUTES = (
    "/iot_objects",
    "/iot_objects/{id}",
    "/iot_objects/{id}/history",
    "/iot_objects/by_client/{client}",
    "/iot_data/{id}",
)
READINGS = {
    ("acme", "acme-t1"): [20.0, 22.0, 27.0],
    ("acme", "acme-t2"): [30.0, 10.0],
    ("globex", "globex-t1"): [5.0, 7.0],
    ("initech", "initech-t1"): [99.0],
}


# -- seed 000's edge server, its two routes as the seed writes them (Flask's request/jsonify left out) --------
def processed_data(api_url: str, object_id: str) -> dict[str, Any]:
    response = requests.get(f"{api_url}/iot_data/{object_id}", timeout=10)
    data = response.json()
    values = [entry["value"] for entry in data["measurements"]]
    stats = {"average": sum(values) / len(values), "max": max(values), "min": min(values)}
    return {"object_id": object_id, "statistics": stats}


def client_statistics(api_url: str, client_id: str) -> dict[str, Any]:
    response = requests.get(f"{api_url}/iot_objects/by_client/{client_id}", timeout=10)
    objects = response.json()
    all_values = []
    for obj in objects:
        obj_response = requests.get(f"{api_url}/iot_data/{obj['id']}", timeout=10)
        obj_data = obj_response.json()
        values = [entry["value"] for entry in obj_data["measurements"]]
        all_values.extend(values)
    stats = {"average": sum(all_values) / len(all_values), "max": max(all_values), "min": min(all_values)}
    return {"client_id": client_id, "statistics": stats}


def _fill(url: str) -> dict[str, str]:
    """Three clients, their objects and readings; returns each client's tenant key."""
    keys: dict[str, str] = {}
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    with httpx.Client(base_url=url, timeout=10) as http:
        for (client, object_id), values in READINGS.items():
            if client not in keys:
                made = http.post("/api/v1/admin/tenants", headers={"X-API-Key": TEST_ADMIN_KEY}, json={"name": client})
                assert made.status_code == 201, made.text
                keys[client] = made.json()["api_key"]
            owner = {"X-API-Key": keys[client]}
            made = http.post(
                "/api/v1/devices/register",
                headers=owner,
                json={"name": object_id, "id": object_id, "device_type": "temperature_sensor"},
            )
            assert made.status_code == 201, made.text
            for i, value in enumerate(values):
                sent = http.post(
                    f"/api/v1/devices/{object_id}/telemetry",
                    headers=owner,
                    json={"data": {"temperature": value}, "timestamp": (base + timedelta(minutes=i)).isoformat()},
                )
                assert sent.status_code == 201, sent.text
    return keys


def test_seed_000_edge_code_reads_the_open_objects_api(server_factory) -> None:
    server = server_factory(env={"TELEMETRA_ADMIN_KEY": TEST_ADMIN_KEY, "TELEMETRA_OBJECTS_API_OPEN": "acme, globex"})
    keys = _fill(server.url)

    acme = client_statistics(server.url, "acme")
    everything = READINGS[("acme", "acme-t1")] + READINGS[("acme", "acme-t2")]
    assert acme == {
        "client_id": "acme",
        "statistics": {"average": pytest.approx(sum(everything) / 5), "max": 30.0, "min": 10.0},
    }
    assert client_statistics(server.url, "globex")["statistics"] == {"average": 6.0, "max": 7.0, "min": 5.0}
    assert processed_data(server.url, "acme-t1") == {
        "object_id": "acme-t1",
        "statistics": {"average": pytest.approx(23.0), "max": 27.0, "min": 20.0},
    }
    listed = requests.get(f"{server.url}/iot_objects", timeout=10).json()
    assert sorted((o["id"], o["client"]) for o in listed) == [
        ("acme-t1", "acme"),
        ("acme-t2", "acme"),
        ("globex-t1", "globex"),
    ]
    one = requests.get(f"{server.url}/iot_objects/acme-t2", timeout=10).json()
    assert one["metrics"] == {"temperature": 10.0} and one["client"] == "acme"
    history = requests.get(f"{server.url}/iot_objects/acme-t2/history", timeout=10).json()
    assert [h["value"] for h in history["history"]] == [10.0, 30.0]

    # initech is not listed: keyless, it is closed exactly as an unknown object or client is (no existence leak).
    for path in (
        "/iot_objects/by_client/initech",
        "/iot_objects/initech-t1",
        "/iot_objects/initech-t1/history",
        "/iot_data/initech-t1",
        "/iot_data/no-such-object",
        "/iot_objects/by_client/nobody",
        "/iot_data/a%00b",
        "/iot_objects/by_client/a%00b",
        "/iot_objects/" + "x" * 5000,
        "/iot_data/%C3%A9%01%7F",
    ):
        resp = requests.get(server.url + path, timeout=10)
        assert resp.status_code == 401, path
        assert resp.json()["code"] == "missing_api_key", path
    # Read-only and only the objects routes: the edge statistics and writes still need a key.
    assert requests.get(f"{server.url}/client_statistics?client_id=acme", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/processed_data?object_id=acme-t1", timeout=10).status_code == 401
    assert requests.post(f"{server.url}/api/v1/devices/acme-t1/telemetry", json={"x": 1}, timeout=10).status_code == 401
    # A key, when sent, is checked as always: a wrong one is refused, initech's own sees only initech.
    assert requests.get(f"{server.url}/iot_objects", headers={"x-api-key": "wrong"}, timeout=10).status_code == 401
    own = requests.get(f"{server.url}/iot_objects", headers={"x-api-key": keys["initech"]}, timeout=10).json()
    assert [o["id"] for o in own] == ["initech-t1"]
    foreign = requests.get(f"{server.url}/iot_data/acme-t1", headers={"x-api-key": keys["initech"]}, timeout=10)
    assert foreign.status_code == 404
    server.stop()
    assert "TELEMETRA_OBJECTS_API_OPEN" in server.stderr and "acme, globex" in server.stderr


async def test_the_mode_off_keeps_every_objects_route_closed(client, make_tenant, make_device) -> None:
    tenant = await make_tenant("acme")
    await make_device(tenant, id="acme-t1")
    for template in KEYLESS_ROUTES:
        path = template.format(id="acme-t1", client="acme")
        resp = await client.get(path)
        assert resp.status_code == 401, path
        assert resp.json()["code"] == "missing_api_key"

"""Seed 000's contract: a client's objects, their data, and the edge's statistics, never another client's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest


@pytest.fixture
async def client1(client, make_tenant, make_device, app):
    app.state.services.settings.anomaly_thresholds = "temperature=..35"
    tenant = await make_tenant("client1")
    other = await make_tenant("client2")
    sensor = await make_device(tenant, id="sensor-1", device_type="temperature_sensor")
    hygro = await make_device(tenant, id="sensor-2", device_type="humidity_sensor")
    foreign = await make_device(other, id="sensor-9", device_type="temperature_sensor")
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    for minutes, device, data in [
        (0, sensor, {"temperature": 20, "humidity": 40}),
        (10, sensor, {"temperature": 25}),
        (20, sensor, {"temperature": 40}),
        (5, hygro, {"humidity": 50}),
        (15, hygro, {"humidity": 70}),
        (5, foreign, {"temperature": 99}),
    ]:
        owner = other if device is foreign else tenant
        resp = await client.post(
            f"/api/v1/devices/{device['id']}/telemetry",
            headers=owner["headers"],
            json={"data": data, "timestamp": (base + timedelta(minutes=minutes)).isoformat()},
        )
        assert resp.status_code == 201, resp.text
    return {"headers": {"x-api-key": tenant["api_key"]}, "base": base}


async def test_objects_of_the_client(client, client1) -> None:
    h = client1["headers"]
    objects = [
        {"id": "sensor-1", "client": "client1", "type": "temperature_sensor"},
        {"id": "sensor-2", "client": "client1", "type": "humidity_sensor"},
    ]
    assert sorted((await client.get("/iot_objects", headers=h)).json(), key=lambda o: o["id"]) == objects
    assert (
        sorted((await client.get("/iot_objects/by_client/client1", headers=h)).json(), key=lambda o: o["id"]) == objects
    )
    for path in (
        "/iot_objects/by_client/client2",
        "/iot_objects/sensor-9",
        "/iot_objects/sensor-9/history",
        "/iot_data/sensor-9",
        "/processed_data?object_id=sensor-9",
        "/client_statistics?client_id=client2",
        "/iot_objects/nope",
    ):
        resp = await client.get(path, headers=h)
        assert resp.status_code == 404, path
        assert resp.json()["error"] == "Not Found"
    assert (await client.get("/iot_objects/nope", headers=h)).json()["code"] == "device_not_found"
    unauthorised = await client.get("/client_statistics", headers={"x-api-key": "invalid_key"})
    assert unauthorised.status_code == 401 and unauthorised.json()["error"] == "Unauthorized"
    assert (await client.get("/iot_objects")).status_code == 401


async def test_object_latest_values_history_and_measurements(client, client1) -> None:
    h, base = client1["headers"], client1["base"]
    one = (await client.get("/iot_objects/sensor-1", headers=h)).json()
    assert one == {
        "id": "sensor-1",
        "client": "client1",
        "type": "temperature_sensor",
        "metrics": {"humidity": 40.0, "temperature": 40.0},
        "timestamp": (base + timedelta(minutes=20)).isoformat(),
    }
    history = (await client.get("/iot_objects/sensor-1/history", headers=h)).json()
    assert [item["value"] for item in history["history"]] == [40.0, 25.0, 20.0]  # newest first
    data = (await client.get("/iot_data/sensor-1", headers=h)).json()
    assert [m["value"] for m in data["measurements"]] == [40.0, 25.0, 20.0]
    assert {m["key"] for m in data["measurements"]} == {"temperature"}
    humidity = (await client.get("/iot_data/sensor-1", headers=h, params={"key": "humidity"})).json()
    assert [m["value"] for m in humidity["measurements"]] == [40.0]


async def test_processed_data_and_client_statistics(client, client1) -> None:
    h, base = client1["headers"], client1["base"]
    processed = (await client.get("/processed_data", headers=h, params={"object_id": "sensor-1"})).json()
    assert processed["statistics"]["max"] == 40.0 and processed["statistics"]["min"] == 20.0
    assert processed["statistics"]["average"] == pytest.approx(85 / 3)
    assert processed["anomalies"] == [
        {
            "timestamp": (base + timedelta(minutes=20)).isoformat(),
            "key": "temperature",
            "value": 40.0,
            "threshold": "..35",
        }
    ]
    quiet = (await client.get("/processed_data", headers=h, params={"object_id": "sensor-2"})).json()
    assert quiet["statistics"] == {"average": 60.0, "max": 70.0, "min": 50.0} and quiet["anomalies"] == []

    # Each object's own main key: temperatures 20, 25, 40 and humidities 50, 70 (the other client's 99 is not here).
    stats = (await client.get("/client_statistics", headers=h)).json()
    assert stats == {"client_id": "client1", "statistics": {"average": 41.0, "max": 70.0, "min": 20.0}}
    own = await client.get("/client_statistics", headers=h, params={"client_id": "client1", "key": "temperature"})
    assert own.json()["statistics"]["average"] == pytest.approx(85 / 3)

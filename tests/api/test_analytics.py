"""Aggregated series, statistics and the energy report over the API, with numbers worked out by hand.

Europe/Paris leaves summer time on 2026-10-25 at 03:00 CEST (01:00 UTC): that day has 25 hours and its
02:00 comes twice, at 00:00 and at 01:00 UTC. It enters summer time on 2026-03-29 (23 hours, no 02:00).
"""

from __future__ import annotations

import math

import httpx
import pytest


async def send(client: httpx.AsyncClient, tenant: dict, device: dict, ts: str, **data: float) -> None:
    resp = await client.post(
        f"/api/v1/devices/{device['id']}/telemetry", headers=tenant["headers"], json={"data": data, "timestamp": ts}
    )
    assert resp.status_code == 201, resp.text


@pytest.fixture
async def paris_temperatures(client, make_tenant, make_device):
    tenant = await make_tenant()
    device = await make_device(tenant, device_type="temperature_sensor")
    for ts, value in [
        ("2026-10-24T21:30:00Z", 10),
        ("2026-10-24T22:30:00Z", 20),
        ("2026-10-25T22:30:00Z", 30),
        ("2026-10-25T23:30:00Z", 40),
    ]:
        await send(client, tenant, device, ts, temperature=value)
    return tenant, device


async def test_daily_averages_follow_the_local_calendar_across_the_clock_change(client, paris_temperatures) -> None:
    tenant, device = paris_temperatures
    resp = await client.get(
        f"/api/v1/devices/{device['id']}/telemetry",
        headers=tenant["headers"],
        params={
            "keys": "temperature",
            "interval": "1d",
            "agg": "avg",
            "tz": "Europe/Paris",
            "start": "2026-10-24",
            "end": "2026-10-27",
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # 21:30Z is 23:30 on the 24th; 22:30Z on the 24th and 22:30Z on the 25th both fall in the 25-hour 25th.
    assert body["telemetry"]["temperature"] == [
        {"timestamp": "2026-10-24T00:00:00+02:00", "value": 10.0},
        {"timestamp": "2026-10-25T00:00:00+02:00", "value": 25.0},
        {"timestamp": "2026-10-26T00:00:00+01:00", "value": 40.0},
    ]
    assert body["start"] == "2026-10-23T22:00:00+00:00" and body["end"] == "2026-10-26T23:00:00+00:00"


@pytest.mark.parametrize("how, combine", [("count", sum), ("sum", sum), ("min", min), ("max", max)])
async def test_rollups_and_raw_points_give_the_same_answer(client, paris_temperatures, how, combine) -> None:
    tenant, device = paris_temperatures
    params = {
        "keys": "temperature",
        "agg": how,
        "tz": "Europe/Paris",
        "start": "2026-10-24T12:00:00",
        "end": "2026-10-26T05:45:00",
    }
    url = f"/api/v1/devices/{device['id']}/telemetry"
    daily = (await client.get(url, headers=tenant["headers"], params={**params, "interval": "1d"})).json()
    fine = (await client.get(url, headers=tenant["headers"], params={**params, "interval": "15m"})).json()
    by_day: dict[str, list[float]] = {}
    for item in fine["telemetry"]["temperature"]:  # 15-minute buckets come from raw points
        by_day.setdefault(item["timestamp"][:10], []).append(item["value"])
    assert {item["timestamp"][:10]: item["value"] for item in daily["telemetry"]["temperature"]} == {
        day: combine(values) for day, values in by_day.items()
    }


async def test_device_and_tenant_statistics(client, make_tenant, make_device) -> None:
    tenant, other = await make_tenant(), await make_tenant()
    first = await make_device(tenant, device_type="temperature_sensor")
    second = await make_device(tenant)
    foreign = await make_device(other)
    await send(client, tenant, first, "2026-11-02T08:10:00Z", temperature=20)
    await send(client, tenant, first, "2026-11-02T09:00:00Z", temperature=30, humidity=50)
    await send(client, tenant, second, "2026-11-02T12:00:00Z", temperature=10)
    await send(client, other, foreign, "2026-11-02T12:00:00Z", temperature=1000)
    day = {"start": "2026-11-02", "end": "2026-11-03"}

    resp = await client.get(f"/api/v1/devices/{first['id']}/stats", headers=tenant["headers"], params=day)
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert stats["key"] == "temperature"  # the key its type names
    assert stats["stats"] == {
        "count": 2,
        "average": 25.0,
        "min": 20.0,
        "max": 30.0,
        "stddev": 5.0,
        "first": {"timestamp": "2026-11-02T08:10:00+00:00", "value": 20.0},
        "last": {"timestamp": "2026-11-02T09:00:00+00:00", "value": 30.0},
    }

    resp = await client.get("/api/v1/stats", headers=tenant["headers"], params={"key": "temperature", **day})
    body = resp.json()
    assert body["stats"]["count"] == 3 and body["stats"]["average"] == 20.0
    assert body["stats"]["min"] == 10.0 and body["stats"]["max"] == 30.0  # the other tenant's 1000 is not here
    assert math.isclose(body["stats"]["stddev"], math.sqrt(200 / 3))
    assert set(body["devices"]) == {first["id"], second["id"]}
    assert body["devices"][second["id"]]["count"] == 1

    assert (await client.get(f"/api/v1/devices/{foreign['id']}/stats", headers=tenant["headers"])).status_code == 404
    narrow = await client.get(
        f"/api/v1/devices/{first['id']}/stats",
        headers=tenant["headers"],
        params={"start": "2026-11-02T08:30:00Z", "end": "2026-11-02T09:00:00Z"},
    )
    assert narrow.json()["stats"]["count"] == 0 and narrow.json()["stats"]["average"] is None


async def test_energy_report_on_the_day_the_clocks_go_back(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    heater = await make_device(tenant, device_type="heater")
    await make_device(tenant)  # a device without power changes nothing
    for ts, watts in [
        ("2026-10-25T00:00:00Z", 1200),
        ("2026-10-25T01:00:00Z", 600),
        ("2026-10-25T01:30:00Z", 0),
        ("2026-10-25T03:00:00Z", 100),
        ("2026-10-25T05:00:00Z", 100),
    ]:
        await send(client, tenant, heater, ts, instant_power=watts)
    params = {"start": "2026-10-25", "end": "2026-10-26", "tz": "Europe/Paris"}

    days = (await client.get("/api/v1/reports/energy", headers=tenant["headers"], params=params)).json()
    # 02:00 CEST (00Z) 1200 Wh + 02:00 CET (01Z) 600 W for 30 min = 300 Wh; then 0 W, known for an hour only
    # (max hold), so 03:00 CET is known and zero; 100 W for an hour from 03Z; the newest value, 100 W at 05Z,
    # still holds for its hour.
    assert days == {"2026-10-25": {"02:00": 1500.0, "03:00": 0.0, "04:00": 100.0, "06:00": 100.0}}

    listed = (
        await client.get("/api/v1/reports/energy", headers=tenant["headers"], params={**params, "format": "list"})
    ).json()
    assert len(listed) == 25
    by_start = {item["start"]: item for item in listed}
    assert by_start["2026-10-25T02:00:00+02:00"] == {
        "start": "2026-10-25T02:00:00+02:00",
        "wh": 1200.0,
        "coverage": 1.0,
    }
    assert by_start["2026-10-25T02:00:00+01:00"]["wh"] == 300.0
    assert by_start["2026-10-25T03:00:00+01:00"]["coverage"] == 0.5
    assert by_start["2026-10-25T05:00:00+01:00"]["coverage"] == 0.0

    spring = (
        await client.get(
            "/api/v1/reports/energy",
            headers=tenant["headers"],
            params={"start": "2026-03-29", "end": "2026-03-30", "tz": "Europe/Paris", "format": "list"},
        )
    ).json()
    assert len(spring) == 23 and not any("T02:" in item["start"] for item in spring)


async def test_energy_is_split_exactly_at_hour_boundaries_and_a_late_point_is_taken_in(
    client, make_tenant, make_device
) -> None:
    tenant = await make_tenant()
    heater = await make_device(tenant)
    await send(client, tenant, heater, "2026-11-03T00:30:00Z", instant_power=1000)
    await send(client, tenant, heater, "2026-11-03T01:15:00Z", instant_power=0)
    await send(client, tenant, heater, "2026-11-03T04:00:00Z", instant_power=0)
    params = {"start": "2026-11-03", "end": "2026-11-04", "device": heater["id"]}
    url = "/api/v1/reports/energy"

    report = (await client.get(url, headers=tenant["headers"], params=params)).json()["2026-11-03"]
    assert (report["00:00"], report["01:00"]) == (500.0, 250.0)

    await send(client, tenant, heater, "2026-11-03T00:45:00Z", instant_power=2000)  # arrives late
    report = (await client.get(url, headers=tenant["headers"], params=params)).json()["2026-11-03"]
    # 1000 W for 15 min, then 2000 W for 30 min: 250 + 500 Wh in the first hour, 500 Wh in the next.
    assert (report["00:00"], report["01:00"]) == (750.0, 500.0)
    tenant_wide = (
        await client.get(url, headers=tenant["headers"], params={"start": "2026-11-03", "end": "2026-11-04"})
    ).json()["2026-11-03"]
    assert (tenant_wide["00:00"], tenant_wide["01:00"]) == (750.0, 500.0)


@pytest.mark.parametrize(
    "params, code",
    [
        ({"interval": "7x"}, "invalid_interval"),
        ({"interval": "1h", "tz": "Mars/Olympus"}, "invalid_timezone"),
        ({"interval": "1h", "start": "yesterday"}, "invalid_time"),
        ({"interval": "1m", "start": "2020-01-01", "end": "2020-01-11"}, "too_many_buckets"),
        ({"interval": "1m", "start": "2020-01-01", "end": "2026-01-01"}, "range_too_large"),
        ({"interval": "1h", "agg": "none"}, "invalid_aggregate"),
    ],
)
async def test_bad_query_parameters_are_422(client, make_tenant, make_device, params, code) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    resp = await client.get(f"/api/v1/devices/{device['id']}/telemetry", headers=tenant["headers"], params=params)
    assert resp.status_code == 422 and resp.json()["code"] == code, resp.text


async def test_hourly_buckets_keep_the_repeated_hour_apart(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    await send(client, tenant, device, "2026-10-25T00:20:00Z", temperature=1)  # 02:20 CEST
    await send(client, tenant, device, "2026-10-25T01:20:00Z", temperature=3)  # 02:20 CET
    body = (
        await client.get(
            f"/api/v1/devices/{device['id']}/telemetry",
            headers=tenant["headers"],
            params={
                "keys": "temperature",
                "interval": "1h",
                "tz": "Europe/Paris",
                "start": "2026-10-25T00:00:00Z",
                "end": "2026-10-25T03:00:00Z",
            },
        )
    ).json()
    assert body["telemetry"]["temperature"] == [
        {"timestamp": "2026-10-25T02:00:00+02:00", "value": 1.0},
        {"timestamp": "2026-10-25T02:00:00+01:00", "value": 3.0},
    ]

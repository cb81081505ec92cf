"""GET /api/v1/devices/{id}/series: mean, min, max and count per bucket, from raw points under an hour and
from the hourly rollups from an hour on; the same numbers either way; bounded; per tenant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


async def _fill(client, tenant, device, minutes: int) -> list[float]:
    """One value a minute from START (every 7th minute a second point 30 s later), through batches."""
    values, messages = [], []
    for n in range(minutes):
        for extra in (0, 30) if n % 7 == 0 else (0,):
            value = float((n * 37 + extra) % 101)
            values.append(value)
            ts = START + timedelta(minutes=n, seconds=extra)
            messages.append({"device_id": device["id"], "data": {"t": value, "s": "x"}, "timestamp": ts.isoformat()})
    for first in range(0, len(messages), 500):
        resp = await client.post(
            "/api/v1/telemetry/batch", headers=tenant["headers"], json=messages[first : first + 500]
        )
        assert resp.status_code in (200, 201), resp.text
    return values


async def _series(client, tenant, device_id, **params):
    return await client.get(f"/api/v1/devices/{device_id}/series", headers=tenant["headers"], params=params)


async def test_minute_and_hour_buckets_agree_with_the_raw_points(client, app, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    await _fill(client, tenant, device, 180)
    # Older than the seal mark (the hour the database was made): every hour is in the rollups.
    window = {"start": START.isoformat(), "end": (START + timedelta(hours=3)).isoformat()}

    fine = await _series(client, tenant, device["id"], key="t", interval="1m", **window)
    assert fine.status_code == 200, fine.text
    body = fine.json()
    assert body["device_id"] == device["id"] and body["key"] == "t" and body["interval_s"] == 60
    assert len(body["buckets"]) == 180 and body["buckets"][0]["t"] == "2026-03-01T00:00:00+00:00"
    doubled = body["buckets"][7]
    assert doubled["count"] == 2 and doubled["min"] <= doubled["mean"] <= doubled["max"]

    coarse = (await _series(client, tenant, device["id"], key="t", interval="1h", **window)).json()
    assert coarse["interval_s"] == 3600 and len(coarse["buckets"]) == 3
    for hour, bucket in enumerate(coarse["buckets"]):
        minutes = body["buckets"][hour * 60 : (hour + 1) * 60]
        assert bucket["count"] == sum(m["count"] for m in minutes)
        assert bucket["min"] == min(m["min"] for m in minutes) and bucket["max"] == max(m["max"] for m in minutes)
        total = sum(m["mean"] * m["count"] for m in minutes)
        assert bucket["mean"] == pytest.approx(total / bucket["count"])
    # A range that is not whole hours: the edges come from raw points.
    edge = {"start": (START + timedelta(minutes=30)).isoformat(), "end": (START + timedelta(minutes=150)).isoformat()}
    odd = (await _series(client, tenant, device["id"], key="t", interval="1h", **edge)).json()
    assert sum(b["count"] for b in odd["buckets"]) == sum(m["count"] for m in body["buckets"][30:150])

    auto = (await _series(client, tenant, device["id"], key="t", **window)).json()
    assert auto["interval_s"] == 60 and auto["buckets"] == body["buckets"]
    assert (await _series(client, tenant, device["id"], key="s", **window)).json()["buckets"] == []  # not numeric
    assert (await _series(client, tenant, device["id"], key="nothing", **window)).json()["buckets"] == []


async def test_auto_keeps_to_2000_buckets(client, make_tenant, make_device) -> None:
    tenant = await make_tenant()
    device = await make_device(tenant)
    for days, width in ((1, 60), (7, 900), (30, 1800), (31, 1800), (60, 3600), (365, 6 * 3600)):
        window = {"start": START.isoformat(), "end": (START + timedelta(days=days)).isoformat()}
        resp = await _series(client, tenant, device["id"], key="t", **window)
        assert resp.status_code == 200, (days, resp.text)
        assert resp.json()["interval_s"] == width, days


async def test_hostile_and_foreign_requests(client, make_tenant, make_device) -> None:
    tenant, intruder = await make_tenant(), await make_tenant()
    device = await make_device(tenant)
    url = f"/api/v1/devices/{device['id']}/series"
    day = {"start": START.isoformat(), "end": (START + timedelta(days=1)).isoformat()}
    cases = [
        ({"key": "t", "start": "1900-01-01", "end": "2100-01-01"}, "range_too_large"),
        (
            {"key": "t", "interval": "1m", "start": START.isoformat(), "end": (START + timedelta(days=10)).isoformat()},
            "too_many_buckets",
        ),
        (
            {
                "key": "t",
                "interval": "1h",
                "start": START.isoformat(),
                "end": (START + timedelta(days=200)).isoformat(),
            },
            "too_many_buckets",
        ),
        ({"key": "t", "start": "2026-03-02", "end": "2026-03-01"}, "invalid_time"),
        ({"key": "t", "start": "not a date"}, None),
        ({"key": "t", "start": "99999-01-01"}, None),
        ({"key": "t", "interval": "2m", **day}, None),
        ({"key": "t\x00", **day}, "invalid_string"),
        ({"key": "", **day}, None),
        ({"key": "k" * 201, **day}, None),
        (day, None),
    ]
    for params, code in cases:
        resp = await client.get(url, headers=tenant["headers"], params=params)
        assert resp.status_code == 422, (params, resp.text)
        assert set(resp.json()) >= {"error", "code", "message"}
        if code:
            assert resp.json()["code"] == code, params
    resp = await client.get(url, headers=intruder["headers"], params={"key": "t", **day})
    assert resp.status_code == 404 and resp.json()["code"] == "device_not_found"
    resp = await client.get("/api/v1/devices/nope/series", headers=tenant["headers"], params={"key": "t", **day})
    assert resp.status_code == 404
    assert (await client.get(url, params={"key": "t"})).status_code == 401


async def test_recent_hours_are_exact_wherever_the_seal_mark_stands(client, app, make_tenant, make_device) -> None:
    """Points before the rollups' seal mark are read from the rollups, those after it raw: the hourly
    buckets must count each point once, the mark inside the range or not, moved or not."""
    from telemetra.domain.timeparse import utcnow

    tenant = await make_tenant()
    device = await make_device(tenant)
    now = utcnow().replace(microsecond=0)
    first = now - timedelta(hours=3)
    messages = [
        {
            "device_id": device["id"],
            "data": {"t": float(n % 13)},
            "timestamp": (first + timedelta(minutes=n)).isoformat(),
        }
        for n in range(178)
    ]
    resp = await client.post("/api/v1/telemetry/batch", headers=tenant["headers"], json=messages)
    assert resp.status_code in (200, 201), resp.text
    window = {"start": (first - timedelta(minutes=20)).isoformat(), "end": now.isoformat()}
    for seal_until in (None, now - timedelta(minutes=100), now - timedelta(minutes=30)):
        if seal_until is not None:
            await app.state.services.store.seal_rollups(seal_until, timedelta(hours=3))
        hourly = (await _series(client, tenant, device["id"], key="t", interval="1h", **window)).json()["buckets"]
        fine = (await _series(client, tenant, device["id"], key="t", interval="1m", **window)).json()["buckets"]
        assert sum(b["count"] for b in hourly) == sum(b["count"] for b in fine) == 178, seal_until
        assert min(b["min"] for b in hourly) == 0.0 and max(b["max"] for b in hourly) == 12.0
        total = sum(b["mean"] * b["count"] for b in fine)
        assert sum(b["mean"] * b["count"] for b in hourly) == pytest.approx(total)

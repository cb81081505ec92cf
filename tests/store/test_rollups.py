"""Rollups kept by the writer equal rollups rebuilt from raw points, and what the raw points say, on both backends.

The data arrive shuffled, in batches, with late points and with points that replace earlier ones (same
device, key and time, a later value): the incremental path must end exactly where a rebuild does.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.domain.energy import integrate_hours
from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.domain.rollup import Aggregate
from telemetra.store import NewDevice, NewKey, Store
from tests.store.rollup_checks import assert_same_stats

T0 = datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc)
FAR = T0 + timedelta(days=10)
HOUR = timedelta(hours=1)


async def _devices(store: Store, count: int) -> tuple[int, list[int]]:
    tenant = await store.create_tenant("acme")
    pks = []
    for i in range(count):
        secret = generate_key("device")
        device = await store.create_device(
            NewDevice(id=f"dev-{i}", tenant_id=tenant.id, name=f"dev-{i}"),
            NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
        )
        pks.append(device.pk)
    return tenant.id, pks


def _dataset(pks: list[int], rng: random.Random) -> list[tuple[int, str, datetime, float]]:
    """Power changes now and then (gaps longer than the hold included), temperature every few minutes."""
    points = []
    for pk in pks:
        t = T0
        while t < T0 + timedelta(hours=30):
            points.append((pk, "instant_power", t, float(rng.choice([0, 500, 1000, 2000, 2500]))))
            t += timedelta(minutes=rng.choice([7, 20, 45, 61, 95, 150]), seconds=rng.randint(0, 59))
        t = T0
        while t < T0 + timedelta(hours=30):
            points.append((pk, "temperature", t, round(rng.gauss(21, 2), 2)))
            t += timedelta(minutes=rng.randint(3, 17))
    return points


async def _write(store: Store, points: list[tuple[int, str, datetime, float]], rng: random.Random) -> None:
    i = 0
    while i < len(points):
        size = rng.randint(1, 40)
        batch = [
            TelemetryMessage(device_pk=pk, ts=ts, data={key: v}, metadata={}, type="sensor", points=[Point(key, ts, v)])
            for pk, key, ts, v in points[i : i + size]
        ]
        await store.write_telemetry(batch, datetime.now(timezone.utc))
        i += size


async def _snapshot(store: Store, tenant_id: int, pks: list[int]) -> tuple[dict, dict]:
    stats = {
        (pk, key, hour): agg
        for key in ("instant_power", "temperature")
        for pk, hour, agg in await store.hourly_rollups(pks, key, T0 - HOUR, FAR)
    }
    energy = {("device", pk): await store.energy_hours("instant_power", T0 - HOUR, FAR, device_pk=pk) for pk in pks}
    energy["tenant"] = await store.energy_hours("instant_power", T0 - HOUR, FAR, tenant_id=tenant_id)
    return stats, energy


def _assert_same(left: tuple[dict, dict], right: tuple[dict, dict]) -> None:
    stats_l, energy_l = left
    stats_r, energy_r = right
    assert_same_stats(stats_l, stats_r)
    assert energy_l.keys() == energy_r.keys()
    for owner, hours in energy_l.items():
        known = {h: v for h, v in hours.items() if abs(v[1]) > 1e-6}
        other = {h: v for h, v in energy_r[owner].items() if abs(v[1]) > 1e-6}
        assert known.keys() == other.keys(), owner
        for hour, (wh, covered) in known.items():
            assert wh == pytest.approx(other[hour][0], abs=1e-6) and covered == pytest.approx(other[hour][1]), (
                owner,
                hour,
            )


@pytest.mark.parametrize("seed", [1, 2])
async def test_incremental_rollups_equal_rebuilt_ones_and_the_raw_truth(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    tenant_id, pks = await _devices(store, 3)
    data = _dataset(pks, rng)
    # Later writes of the same (device, key, time) with new values: the last one written must win.
    replacements = [
        (pk, key, ts, v + 1000.0 if key == "instant_power" else v + 1.5) for pk, key, ts, v in rng.sample(data, 25)
    ]
    shuffled = data[:]
    rng.shuffle(shuffled)
    # Mostly in order, then late points and replacements: the realistic mix of a stream and a backfill.
    in_order = sorted(shuffled[: len(shuffled) // 2], key=lambda p: p[2])
    await _write(store, in_order + shuffled[len(shuffled) // 2 :] + replacements, rng)

    incremental = await _snapshot(store, tenant_id, pks)
    assert await store.rebuild_rollups(None) != (0, 0)
    rebuilt = await _snapshot(store, tenant_id, pks)
    _assert_same(incremental, rebuilt)

    # And both say what the raw points say.
    final = {(pk, key, ts): v for pk, key, ts, v in data}
    final.update({(pk, key, ts): v for pk, key, ts, v in replacements})
    truth_stats: dict = {}
    for (pk, key, ts), v in final.items():
        truth_stats.setdefault((pk, key, ts.replace(minute=0, second=0, microsecond=0)), []).append((ts, v))
    truth_energy: dict = {}
    for pk in pks:
        samples = sorted((ts, v) for (p, key, ts), v in final.items() if p == pk and key == "instant_power")
        # The newest sample's step is still open: rollups hold only closed steps.
        hours = integrate_hours(samples, samples[0][0], samples[-1][0])
        truth_energy[("device", pk)] = {h: (e.wh, e.covered_s) for h, e in hours.items() if e.covered_s > 0}
    tenant_hours: dict = {}
    for pk in pks:
        for hour, (wh, cov) in truth_energy[("device", pk)].items():
            old = tenant_hours.get(hour, (0.0, 0.0))
            tenant_hours[hour] = (old[0] + wh, old[1] + cov)
    truth_energy["tenant"] = tenant_hours
    _assert_same(rebuilt, ({g: Aggregate.from_values(s) for g, s in truth_stats.items()}, truth_energy))


async def test_rebuild_since_keeps_earlier_hours(store: Store) -> None:
    tenant_id, pks = await _devices(store, 1)
    rng = random.Random(5)
    await _write(store, sorted(_dataset(pks, rng), key=lambda p: p[2]), rng)
    before = await _snapshot(store, tenant_id, pks)

    await store.rebuild_rollups(T0 + timedelta(hours=10, minutes=30))

    _assert_same(before, await _snapshot(store, tenant_id, pks))


async def _write_concurrently(
    store: Store, points: list[tuple[int, str, datetime, float]], rng: random.Random, writers: int
) -> None:
    batches = []
    i = 0
    while i < len(points):
        size = rng.randint(1, 40)
        batches.append(
            [
                TelemetryMessage(
                    device_pk=pk, ts=ts, data={key: v}, metadata={}, type="sensor", points=[Point(key, ts, v)]
                )
                for pk, key, ts, v in points[i : i + size]
            ]
        )
        i += size
    for start in range(0, len(batches), writers):
        await asyncio.gather(
            *(store.write_telemetry(batch, datetime.now(timezone.utc)) for batch in batches[start : start + writers])
        )


async def test_concurrent_batches_keep_rollups_equal_to_rebuilt_ones(store: Store) -> None:
    """Batches of the same devices and hours written at once (as the pipeline's writers and other processes
    do), late points and replacements included, end where a rebuild does."""
    rng = random.Random(3)
    tenant_id, pks = await _devices(store, 3)
    data = _dataset(pks, rng)
    replacements = [
        (pk, key, ts, v + 1000.0 if key == "instant_power" else v + 1.5) for pk, key, ts, v in rng.sample(data, 25)
    ]
    shuffled = data[:]
    rng.shuffle(shuffled)
    await _write_concurrently(store, sorted(shuffled[: len(shuffled) // 2], key=lambda p: p[2]), rng, 3)
    await _write_concurrently(store, shuffled[len(shuffled) // 2 :], rng, 3)
    await _write_concurrently(store, replacements, rng, 3)  # each point replaced once: the final value is known

    incremental = await _snapshot(store, tenant_id, pks)
    await store.rebuild_rollups(None)
    _assert_same(incremental, await _snapshot(store, tenant_id, pks))
    final = {(pk, key, ts): v for pk, key, ts, v in data}
    final.update({(pk, key, ts): v for pk, key, ts, v in replacements})
    newest = {}
    for (pk, key, ts), v in final.items():
        if (pk, key) not in newest or ts > newest[(pk, key)][0]:
            newest[(pk, key)] = (ts, v)
    for pk in pks:
        assert await store.latest_values(pk) == {key: newest[(p, key)] for (p, key) in newest if p == pk}

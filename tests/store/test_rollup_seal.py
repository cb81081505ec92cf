"""The seal mark: points from it on are left raw by their batch and added to the rollups by the sealer.

Whatever the mark, and wherever it moves while data arrive (late points before it, replacements on both
sides of it, an hour sealed half-way), the statistics read are those of the raw points, and once all is
sealed the rollup rows are those a rebuild writes. On both backends; concurrent batches on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from telemetra.domain.rollup import Aggregate
from telemetra.domain.timeparse import utcnow
from telemetra.store import Store
from telemetra.store.rollups import RollupConfig
from tests.store.rollup_checks import assert_same_stats
from tests.store.test_rollups import _dataset, _devices, _write

KEYS = ("instant_power", "temperature")
HOUR = timedelta(hours=1)


def _written_alone() -> float:
    return REGISTRY.get_sample_value("telemetra_pg_batches_total", {"written": "alone"}) or 0.0


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _truth(final: dict) -> dict:
    groups: dict = {}
    for (pk, key, ts), v in final.items():
        groups.setdefault((pk, key, _hour(ts)), []).append((ts, v))
    return {g: Aggregate.from_values(s) for g, s in groups.items()}


async def _stats(store: Store, pks: list[int], lo: datetime, hi: datetime) -> dict:
    return {(pk, key, hour): agg for key in KEYS for pk, hour, agg in await store.hourly_rollups(pks, key, lo, hi)}


async def _seal_all(store: Store, until: datetime) -> None:
    while True:
        start, end, _ = await store.seal_rollups(until)
        if end >= until or end == start:
            return


async def _stored_rows(store: Store, pks: list[int], lo: datetime, hi: datetime) -> dict:
    """The rollup rows themselves: with the mark at ``hi``, hourly_rollups reads nothing raw."""
    start, end, _ = await store.seal_rollups(hi)
    assert start == end == hi
    return await _stats(store, pks, lo, hi)


async def test_points_after_the_mark_are_exact_before_and_after_sealing(store: Store) -> None:
    rng = random.Random(11)
    _, pks = await _devices(store, 3)
    # Two days ahead: past the mark a fresh database starts with (this hour), so nothing is sealed yet.
    t0 = _hour(utcnow()) + timedelta(days=2)
    shift = t0 - datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc)
    data = [(pk, key, ts + shift, v) for pk, key, ts, v in _dataset(pks, rng)]
    lo, hi = t0 - HOUR, t0 + timedelta(days=2)
    final = {(pk, key, ts): v for pk, key, ts, v in data}

    first_half = sorted(data[: len(data) // 2], key=lambda p: p[2])
    await _write(store, first_half, rng)
    assert_same_stats(
        await _stats(store, pks, lo, hi),
        _truth({k: final[k] for k in {(pk, key, ts) for pk, key, ts, _ in first_half}}),
    )

    # Seal half-way through an hour, then write the rest: late points before the mark, new ones after it,
    # and replacements on both sides of it, some in the hour the mark cuts.
    mark = t0 + timedelta(hours=10, minutes=30)
    await _seal_all(store, mark)
    replacements = [(pk, key, ts, v + 7.5) for pk, key, ts, v in rng.sample(data, 40)]
    replacements += [(pk, key, ts, v - 3.25) for pk, key, ts, v in data if mark - HOUR / 2 <= ts < mark + HOUR / 2][:10]
    rest = data[len(data) // 2 :]
    rng.shuffle(rest)
    await _write(store, rest + replacements, rng)
    final.update({(pk, key, ts): v for pk, key, ts, v in replacements})
    assert any(ts < mark for _, _, ts, _ in replacements) and any(ts >= mark for _, _, ts, _ in replacements)
    assert_same_stats(await _stats(store, pks, lo, hi), _truth(final))
    totals = await store.rollup_totals(pks, "temperature", lo, hi)
    for pk in pks:
        samples = [(ts, v) for (p, key, ts), v in final.items() if p == pk and key == "temperature"]
        expected = Aggregate.from_values(samples)
        assert (totals[pk].count, totals[pk].min, totals[pk].max, totals[pk].first, totals[pk].last) == (
            expected.count,
            expected.min,
            expected.max,
            expected.first,
            expected.last,
        )
        assert totals[pk].sum == pytest.approx(expected.sum)

    # Everything sealed: the rows the sealer and the batches wrote are the rows a rebuild writes.
    await _seal_all(store, hi)
    sealed = await _stored_rows(store, pks, lo, hi)
    assert_same_stats(sealed, _truth(final))
    await store.rebuild_rollups(None)
    assert_same_stats(await _stored_rows(store, pks, lo, hi), sealed)


async def test_sealing_moves_in_slices_and_never_backwards(store: Store) -> None:
    start, end, _ = await store.seal_rollups(utcnow() - timedelta(days=1))
    assert end == start  # the mark never moves back
    until = start + timedelta(hours=3)
    first = await store.seal_rollups(until, timedelta(hours=1))
    assert first[0] == start and first[1] == start + HOUR
    second = await store.seal_rollups(until, timedelta(hours=1))
    assert second[0] == first[1] and second[1] == start + 2 * HOUR


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("power_series", [True, False], ids=["power", "alone"])
async def test_batches_written_while_the_mark_moves_are_counted_once(store: Store, power_series: bool) -> None:
    """Three writers at once while a sealer keeps moving the mark up to the newest time being written (as
    another process would): no point is counted twice or lost, whichever side of the mark its batch
    found it on, replacements included. With no power key, the batches are written alone (one statement
    that takes the seal lock and reads the mark itself), but those that replace points."""
    if not power_series:
        store.rollup_config = RollupConfig(energy_keys=frozenset())  # type: ignore[attr-defined]
    alone_before = _written_alone()
    rng = random.Random(12)
    _, pks = await _devices(store, 3)
    t0 = _hour(utcnow()) + timedelta(days=2)
    shift = t0 - datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc)
    data = [(pk, key, ts + shift, v) for pk, key, ts, v in _dataset(pks, rng)]
    data.sort(key=lambda p: p[2])
    replacements = [(pk, key, ts, v + 2.0) for pk, key, ts, v in rng.sample(data, 30)]
    lo, hi = t0 - HOUR, t0 + timedelta(days=2)
    front = t0  # the newest time of a batch being written: the sealer follows it as closely as it can
    pending: list = []
    sealed_slices = 0

    async def writer() -> None:
        nonlocal front
        while pending:
            batch = pending.pop()
            front = max(front, max(ts for _, _, ts, _ in batch) + timedelta(seconds=1))
            await _write(store, batch, rng)

    async def sealer(done: asyncio.Future) -> None:
        nonlocal sealed_slices
        while not done.done():
            start, end, _ = await store.seal_rollups(front)
            sealed_slices += end > start
            await asyncio.sleep(0)

    done = asyncio.get_running_loop().create_future()
    seal_task = asyncio.create_task(sealer(done))
    # The replacements only once every original is committed: the later write wins, and which one is
    # later must not depend on how the writers interleave.
    for batches in (
        [data[i : i + 8] for i in range(0, len(data), 8)],
        [replacements[i : i + 3] for i in range(0, 30, 3)],
    ):
        pending.extend(reversed(batches))
        await asyncio.gather(*(writer() for _ in range(3)))
    done.set_result(None)
    await seal_task
    assert sealed_slices > 20  # the mark moved all along the writing
    final = {(pk, key, ts): v for pk, key, ts, v in data}
    final.update({(pk, key, ts): v for pk, key, ts, v in replacements})
    assert_same_stats(await _stats(store, pks, lo, hi), _truth(final))
    await _seal_all(store, hi)
    assert_same_stats(await _stored_rows(store, pks, lo, hi), _truth(final))
    if not power_series:
        assert _written_alone() > alone_before + 50  # of about 90 batches: those that replaced none

"""PostgreSQL's batch write: small batches travel inside one statement (as JSON rows), large ones are COPYed
first. Both must store exactly the same; message ids come from a reserve; concurrent batches count the day
in slots of their own."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from prometheus_client import REGISTRY

from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.errors import UnstorableMessage
from telemetra.store import NewDevice, NewKey
from telemetra.store.postgres import PostgresStore
from telemetra.store.postgres import write as pg
from telemetra.store.postgres.ids import MessageIds
from telemetra.store.postgres.rollups import SEAL_LOCK

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def database_url(pg_database: str) -> str:
    """PostgreSQL only: the shared ``store`` fixture opens the store on it."""
    return pg_database


def _msg(device_pk: int, ts: datetime, **values) -> TelemetryMessage:
    return TelemetryMessage(
        device_pk=device_pk,
        ts=ts,
        data={"sent": values, "z": 1, "a": 2},
        metadata={"via": "test"},
        type="sensor",
        points=[Point(k, ts, v) for k, v in values.items()],
    )


async def _device(store: PostgresStore, tenant_id: int, device_id: str):
    secret = generate_key("device")
    return await store.create_device(
        NewDevice(id=device_id, tenant_id=tenant_id, name=device_id),
        NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant_id),
    )


def _history(device_pk: int) -> list[list[TelemetryMessage]]:
    """Two batches: the second repeats some points of the first with new values (the later write wins)."""
    first = [
        _msg(device_pk, T0 + timedelta(seconds=i), t=float(i), s=f"v{i}", on=i % 2 == 0, doc={"i": [i]})
        for i in range(10)
    ]
    again = [_msg(device_pk, T0 + timedelta(seconds=i), t=100.0 + i, s=f"w{i}") for i in range(5, 15)]
    return [first, again]


async def _stored(store: PostgresStore, device_pk: int) -> tuple:
    messages, total = await store.list_messages(device_pk=device_pk, limit=100)
    return (
        await store.query_points(device_pk, None, None, None, 100, False),
        await store.latest_values(device_pk),
        [(m.ts, m.type, m.data, m.metadata) for m in messages],
        total,
    )


async def test_the_inline_and_copy_paths_store_the_same(store: PostgresStore, monkeypatch) -> None:
    tenant = await store.create_tenant("acme")
    inline, by_copy = await _device(store, tenant.id, "inline"), await _device(store, tenant.id, "copy")
    for batch in _history(inline.pk):
        await store.write_telemetry(batch, T0)
    monkeypatch.setattr(pg, "INLINE_BATCH_MAX_POINTS", 0)  # every batch is COPYed
    for batch in _history(by_copy.pk):
        await store.write_telemetry(batch, T0)
    inlined, copied = await _stored(store, inline.pk), await _stored(store, by_copy.pk)
    assert inlined == copied
    points, latest, messages, total = inlined
    assert [v for _, v in points["t"]] == [float(i) for i in range(5)] + [100.0 + i for i in range(5, 15)]
    assert latest["s"] == (T0 + timedelta(seconds=14), "w14") and latest["doc"] == (
        T0 + timedelta(seconds=9),
        {"i": [9]},
    )
    assert total == 20 and list(messages[0][2]) == ["sent", "z", "a"]  # json kept as sent, key order too


async def test_concurrent_batches_get_distinct_increasing_ids(store: PostgresStore) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "d")
    store._message_ids = MessageIds(block=7)  # reserves run out and refill mid-test, while batches overlap
    batches = [[_msg(device.pk, T0 + timedelta(seconds=b, milliseconds=i), t=1.0) for i in range(5)] for b in range(12)]
    await asyncio.gather(*(store.write_telemetry(batch, T0) for batch in batches))
    ids = [m.id for batch in batches for m in batch]
    assert len(set(ids)) == len(ids) and None not in ids
    for batch in batches:
        assert [m.id for m in batch] == sorted(m.id for m in batch)
    rows = await store._fetch("SELECT id FROM messages WHERE device_pk = $1", device.pk)
    assert sorted(r[0] for r in rows) == sorted(ids)


async def test_concurrent_batches_count_the_day_in_slots_that_add_up(store: PostgresStore) -> None:
    tenant = await store.create_tenant("acme")
    devices = [await _device(store, tenant.id, f"d{i}") for i in range(4)]
    now = datetime.now(timezone.utc)
    batches = [[_msg(d.pk, now - timedelta(seconds=i), t=1.0, u=2.0) for i in range(3)] for d in devices]
    await asyncio.gather(*(store.write_telemetry(batch, now) for batch in batches))
    slots = await store._fetch("SELECT slot, messages, points FROM daily_counts WHERE day = $1", now.date())
    assert sum(r[1] for r in slots) == 12 and sum(r[2] for r in slots) == 24
    counts = await store.dashboard(
        now, now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0, microsecond=0)
    )
    assert (counts.messages_total, counts.points_today) == (12, 24)


async def test_a_failed_batch_leaves_nothing_and_the_connection_usable(store: PostgresStore) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "d")
    bad = _msg(device.pk, T0 + timedelta(seconds=1), s="nul \x00 inside")  # PostgreSQL text takes no NUL
    with pytest.raises(UnstorableMessage):
        await store.write_telemetry([_msg(device.pk, T0, t=2.0), bad], T0)
    assert (await store.list_messages(device_pk=device.pk))[1] == 0
    assert await store._fetch("SELECT 1 FROM points") == []
    await store.write_telemetry([_msg(device.pk, T0, t=3.0)], T0)
    assert (await store.latest_values(device.pk))["t"] == (T0, 3.0)
    busy = await store._fetch(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
    )
    assert busy[0][0] == 0


async def test_a_batch_cancelled_while_it_begins_leaves_no_transaction_open(store: PostgresStore) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "d")
    for step in range(4):  # cancelled at successive awaits of the batch
        writing = asyncio.create_task(store.write_telemetry([_msg(device.pk, T0, t=1.0)], T0))
        for _ in range(step):
            await asyncio.sleep(0)
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
    await store.write_telemetry([_msg(device.pk, T0 + timedelta(seconds=1), t=2.0)], T0)
    assert (await store.latest_values(device.pk))["t"] == (T0 + timedelta(seconds=1), 2.0)
    busy = await store._fetch(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
    )
    assert busy[0][0] == 0


async def test_every_value_reads_back_exactly_through_the_inline_path(store: PostgresStore, monkeypatch) -> None:
    """Doubles bit for bit, and strings with quotes, backslashes, control characters and any script, carried as
    JSON text. (The store suite's own run of this check has 2,021 points: there it takes the COPY path.)"""
    from tests.store.test_store import test_every_value_reads_back_exactly_as_written as check

    monkeypatch.setattr(pg, "INLINE_BATCH_MAX_POINTS", 1_000_000)
    await check(store)


def _written(how: str) -> float:
    return REGISTRY.get_sample_value("telemetra_pg_batches_total", {"written": how}) or 0.0


async def test_a_batch_is_one_statement_alone_when_it_can_and_a_transaction_otherwise(store: PostgresStore) -> None:
    """Alone: one round trip. A msg_id to claim, a power key, or a point replacing a stored one need more
    statements: the batch is then a transaction (a replacing one is refused alone first, having written
    nothing). Whichever way, what is stored is the same."""
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "d")
    cases = [
        ("alone", [_msg(device.pk, T0, t=1.0)]),
        ("alone", [_msg(device.pk, T0 + timedelta(seconds=i), t=float(i)) for i in range(1, 4)]),
        ("transaction", [_msg(device.pk, T0 + timedelta(seconds=4), t=4.0)]),  # with a msg_id, below
        ("transaction", [_msg(device.pk, T0 + timedelta(seconds=5), instant_power=100.0)]),
        ("transaction", [_msg(device.pk, T0 + timedelta(seconds=2), t=20.0)]),  # replaces t at 2 s
    ]
    cases[2][1][0].msg_id = "m-4"
    for how, batch in cases:
        before = _written(how)
        await store.write_telemetry(batch, T0)
        assert _written(how) == before + 1, how
    points = await store.query_points(device.pk, {"t"}, None, None, 100, False)
    assert [v for _, v in points["t"]] == [1.0, 1.0, 20.0, 3.0, 4.0]
    messages, total = await store.list_messages(device_pk=device.pk, limit=100)
    assert total == 7 and len({m.id for m in messages}) == 7
    # The refused attempt left nothing behind: one row per message, the device counted once per message.
    assert await store._fetch("SELECT messages_sent FROM devices WHERE pk = $1", device.pk) == [(7,)]


async def test_the_seal_lock_taken_alone_is_the_sealers(store: PostgresStore) -> None:
    source = await store._fetch("SELECT prosrc FROM pg_proc WHERE proname = 'batch_seal_mark'")
    assert f"pg_advisory_xact_lock_shared({SEAL_LOCK[0]}, {SEAL_LOCK[1]})" in source[0][0]


async def test_a_batch_alone_waits_for_the_seal_lock_before_it_locks_any_row(
    store: PostgresStore, database_url: str
) -> None:
    """While a sealer holds the seal lock, a batch alone waits for it holding nothing: its device row and
    the day's counter rows stay free (else a transaction's batch waiting for them, and the sealer waiting
    for that transaction, would close a cycle)."""
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "d")
    await store.write_telemetry([_msg(device.pk, T0, t=1.0)], T0)  # the day's counter row exists
    sealer, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        sealing = sealer.transaction()
        await sealing.start()
        await sealer.execute("SELECT pg_advisory_xact_lock($1, $2)", *SEAL_LOCK)
        before = _written("alone")
        writing = asyncio.create_task(store.write_telemetry([_msg(device.pk, T0 + timedelta(seconds=1), t=2.0)], T0))
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        for _ in range(200):
            if await other.fetchval(waiting):
                break
            await asyncio.sleep(0.01)
        assert await other.fetchval(waiting) == 1 and not writing.done()
        async with other.transaction():
            await other.execute("SET LOCAL lock_timeout = '200ms'")
            await other.execute("SELECT 1 FROM devices WHERE pk = $1 FOR NO KEY UPDATE", device.pk)
            await other.execute("SELECT 1 FROM daily_counts FOR UPDATE")
            await other.execute("SELECT 1 FROM minute_counts FOR UPDATE")
        await sealing.commit()
        await writing
        assert _written("alone") == before + 1
        assert (await store.latest_values(device.pk))["t"] == (T0 + timedelta(seconds=1), 2.0)
    finally:
        await sealer.close()
        await other.close()

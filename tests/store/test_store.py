"""The same store suite on SQLite and on real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import struct
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.domain.telemetry import MAX_ABS_NUMBER, MIN_ABS_NUMBER
from telemetra.errors import DeviceIdTaken, DeviceNameTaken, TenantNameTaken
from telemetra.store import DeviceFilter, NewDevice, NewKey, Store, store_from_url

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def _key(kind="device", tenant_id=None, **kw) -> NewKey:
    secret = generate_key(kind)
    return NewKey(kind=kind, hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant_id, **kw)


def _msg(device_pk: int, ts: datetime, **values) -> TelemetryMessage:
    return TelemetryMessage(
        device_pk=device_pk,
        ts=ts,
        data=values,
        metadata={"m": 1},
        type="sensor",
        points=[
            Point(k, ts, float(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in values.items()
        ],
    )


async def _device(store: Store, tenant_id: int, device_id: str = "dev-1", name: str | None = None):
    return await store.create_device(
        NewDevice(id=device_id, tenant_id=tenant_id, name=name or device_id), _key(tenant_id=tenant_id)
    )


async def test_tenant_names_are_unique(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    assert (await store.get_tenant(tenant.id)).name == "acme"
    assert (await store.get_tenant_by_name("acme")).id == tenant.id
    with pytest.raises(TenantNameTaken):
        await store.create_tenant("acme")
    assert [(t.name, n) for t, n in await store.list_tenants()] == [("acme", 0)]


async def test_keys_are_found_by_hash_and_revoked(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    secret = generate_key("tenant")
    key = await store.create_key(
        NewKey(
            kind="tenant",
            hash=hash_key(secret),
            prefix=visible_prefix(secret),
            tenant_id=tenant.id,
            scope="ingest",
            name="gw",
        )
    )
    found = await store.find_key(hash_key(secret))
    assert (found.id, found.scope, found.name, found.revoked_at) == (key.id, "ingest", "gw", None)
    assert await store.find_key(hash_key(secret + "x")) is None
    assert await store.revoke_key(key.id, T0) is True
    assert await store.revoke_key(key.id, T0) is False
    assert (await store.get_key(key.id)).revoked_at == T0


async def test_a_key_and_its_device_are_found_in_one_lookup(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    secret = generate_key("device")
    device = await store.create_device(
        NewDevice(id="meter-1", tenant_id=tenant.id, name="meter", device_type="meter", attributes={"a": [1]}),
        NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
    )
    key, found = await store.find_credentials(hash_key(secret))
    assert key == await store.find_key(hash_key(secret))
    assert found == await store.get_device_by_pk(device.pk)
    assert (found.id, found.device_type, found.attributes) == ("meter-1", "meter", {"a": [1]})
    tenant_secret = generate_key("tenant")
    tenant_key = await store.create_key(
        NewKey(kind="tenant", hash=hash_key(tenant_secret), prefix=visible_prefix(tenant_secret), tenant_id=tenant.id)
    )
    assert await store.find_credentials(hash_key(tenant_secret)) == (tenant_key, None)
    assert await store.find_credentials(hash_key(secret + "x")) is None
    assert await store.revoke_key(key.id, T0)
    assert (await store.find_credentials(hash_key(secret)))[0].revoked_at == T0  # found, usable or not


async def test_broker_credentials_list_only_usable_device_keys(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    live = await store.create_device(
        NewDevice(id="live", tenant_id=tenant.id, name="live"), _key(tenant_id=tenant.id, broker_hash="$7$h-live")
    )
    expiring = await store.create_device(
        NewDevice(id="expiring", tenant_id=tenant.id, name="expiring"),
        _key(tenant_id=tenant.id, broker_hash="$7$h-exp", expires_at=T0),
    )
    revoked = await store.create_device(
        NewDevice(id="revoked", tenant_id=tenant.id, name="revoked"), _key(tenant_id=tenant.id, broker_hash="$7$h-rev")
    )
    await _device(store, tenant.id, "old-key-without-hash")
    await store.create_key(_key("tenant", tenant_id=tenant.id, broker_hash="$7$h-tenant"))
    (revoked_key,) = await store.list_keys(device_pk=revoked.pk)
    await store.revoke_key(revoked_key.id, T0)

    before = await store.broker_credentials(T0 - timedelta(seconds=1))
    after = await store.broker_credentials(T0)

    assert before == [("expiring", "$7$h-exp"), ("live", "$7$h-live")]
    assert after == [("live", "$7$h-live")]
    assert live.id == "live" and expiring.id == "expiring"


async def test_activity_adds_usage_and_keeps_latest_times(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    (key,) = await store.list_keys(device_pk=device.pk)
    await store.record_activity({key.id: (3, T0)}, {device.pk: T0})
    await store.record_activity({key.id: (2, T0 - timedelta(hours=1))}, {device.pk: T0 - timedelta(hours=1)})
    key = await store.get_key(key.id)
    assert (key.usage_count, key.last_used_at) == (5, T0)
    assert (await store.get_device(device.id)).last_seen == T0


async def test_an_activity_flush_leaves_alone_a_device_its_telemetry_already_moved(store: Store, database_url) -> None:
    """A telemetry batch moves its devices' last-seen time itself: the flush of the requests' times that
    follows neither writes those rows nor waits for a transaction holding them (the writer's next batch)."""
    tenant = await store.create_tenant("acme")
    moved, behind = await _device(store, tenant.id, "dev-moved"), await _device(store, tenant.id, "dev-behind")
    await store.write_telemetry([_msg(moved.pk, T0, t=1)], T0 + timedelta(seconds=1))  # last_seen = received_at
    if store.backend != "postgres":
        await store.record_activity({}, {moved.pk: T0, behind.pk: T0})
    else:
        import asyncpg

        holder = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            async with holder.transaction():  # as a batch of that device, still running
                await holder.execute("SELECT pk FROM devices WHERE pk = $1 FOR NO KEY UPDATE", moved.pk)
                # Hangs here with the row held if the flush locked every device it names (guard only).
                await asyncio.wait_for(store.record_activity({}, {moved.pk: T0, behind.pk: T0}), 60)
        finally:
            await holder.close()
    assert (await store.get_device("dev-moved")).last_seen == T0 + timedelta(seconds=1)
    assert (await store.get_device("dev-behind")).last_seen == T0


async def test_device_ids_unique_across_tenants_names_per_tenant(store: Store) -> None:
    a, b = await store.create_tenant("a"), await store.create_tenant("b")
    await _device(store, a.id, "dev-1", "boiler")
    with pytest.raises(DeviceIdTaken):
        await _device(store, b.id, "dev-1", "other")
    with pytest.raises(DeviceNameTaken):
        await _device(store, a.id, "dev-2", "boiler")
    await _device(store, b.id, "dev-3", "boiler")  # same name, other tenant: fine
    # The failed creations left neither a device nor a key behind.
    devices, total = await store.list_devices(DeviceFilter())
    assert total == 2 and sorted(d.id for d in devices) == ["dev-1", "dev-3"]
    assert len(await store.list_keys(kind="device")) == 2


async def test_list_devices_filters_and_paginates(store: Store) -> None:
    a, b = await store.create_tenant("a"), await store.create_tenant("b")
    for i in range(5):
        await _device(store, a.id, f"a-{i}", f"Boiler_{i}%")
    await _device(store, b.id, "b-0", "Boiler")
    page, total = await store.list_devices(DeviceFilter(tenant_id=a.id, limit=2, offset=2))
    assert total == 5 and len(page) == 2
    _, total = await store.list_devices(DeviceFilter(search="boiler_3%"))
    assert total == 1  # LIKE wildcards in the search text are taken literally
    await store.update_device((await store.get_device("a-1")).pk, {"status": "maintenance"})
    found, total = await store.list_devices(DeviceFilter(status="maintenance"))
    assert total == 1 and found[0].id == "a-1"


async def test_telemetry_points_upsert_later_write_wins(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    first, replay = _msg(device.pk, T0, t=20, s="on"), _msg(device.pk, T0, t=21)
    await store.write_telemetry([first], T0)
    await store.write_telemetry([replay, _msg(device.pk, T0 + timedelta(seconds=1), t=22)], T0)
    assert first.id is not None and replay.id > first.id
    series = await store.query_points(device.pk, None, None, None, 100, False)
    assert series["t"] == [(T0, 21.0), (T0 + timedelta(seconds=1), 22.0)]
    assert series["s"] == [(T0, "on")]


async def test_duplicate_point_within_one_batch_keeps_the_last(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await store.write_telemetry([_msg(device.pk, T0, t=1), _msg(device.pk, T0, t=2)], T0)
    assert (await store.query_points(device.pk, ["t"], None, None, 10, False))["t"] == [(T0, 2.0)]


async def test_latest_only_moves_forward(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await store.write_telemetry([_msg(device.pk, T0, t=1, flag=True, doc={"a": [1, 2]})], T0)
    await store.write_telemetry([_msg(device.pk, T0 - timedelta(minutes=5), t=0)], T0)  # late
    latest = await store.latest_values(device.pk)
    assert latest == {"t": (T0, 1.0), "flag": (T0, True), "doc": (T0, {"a": [1, 2]})}


async def test_query_points_range_is_start_inclusive_end_exclusive(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await store.write_telemetry([_msg(device.pk, T0 + timedelta(minutes=i), t=i, u=-i) for i in range(10)], T0)
    got = await store.query_points(device.pk, ["t"], T0 + timedelta(minutes=2), T0 + timedelta(minutes=5), 100, False)
    assert list(got) == ["t"] and [v for _, v in got["t"]] == [2.0, 3.0, 4.0]
    newest = await store.query_points(device.pk, ["t"], None, None, 2, True)
    assert [v for _, v in newest["t"]] == [9.0, 8.0]


async def test_messages_kept_as_sent_newest_first(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    for i in range(3):
        msg = _msg(device.pk, T0 + timedelta(seconds=i), t=i)
        msg.data = {"t": i, "nested": {"z": 1, "a": 2}}
        msg.type = "status" if i == 1 else "sensor"
        await store.write_telemetry([msg], T0)
    page, total = await store.list_messages(device_pk=device.pk, limit=2)
    assert total == 3 and [m.data["t"] for m in page] == [2, 1]
    assert list(page[0].data["nested"]) == ["z", "a"]  # key order as sent
    only_status, total = await store.list_messages(device_pk=device.pk, msg_type="status")
    assert total == 1 and only_status[0].device_id == device.id
    assert await store.device_stats(device.pk) == (3, T0, T0 + timedelta(seconds=2))


async def test_delete_device_removes_its_data(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await store.write_telemetry([_msg(device.pk, T0, t=1)], T0)
    await store.delete_device(device.pk)
    assert await store.get_device(device.id) is None
    assert await store.list_keys(device_pk=device.pk) == []
    assert await store.latest_values(device.pk) == {}
    assert (await store.list_messages())[1] == 0


async def test_dashboard_counts(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    online = await _device(store, tenant.id, "on")
    await _device(store, tenant.id, "off")
    now = datetime.now(timezone.utc)
    await store.write_telemetry([_msg(online.pk, now, a=1, b=2)], now)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    counts = await store.dashboard(now, now - timedelta(minutes=5), day_start)
    assert (counts.tenants, counts.online, counts.messages_total, counts.messages_since, counts.points_today) == (
        1,
        1,
        1,
        1,
        2,
    )
    assert counts.devices_by_status == {"active": 2}


async def test_migrate_is_idempotent(store: Store) -> None:
    assert await store.migrate() == []


async def test_postgres_telemetry_is_partitioned_by_month(store: Store) -> None:
    if store.backend != "postgres":
        return  # partitions exist only on PostgreSQL; SQLite keeps one table
    now = datetime.now(timezone.utc)
    rows = await store._fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'points'"
    )
    names = {r[0] for r in rows}
    assert f"points_y{now.year}m{now.month:02d}" in names and "points_default" in names
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    await store.write_telemetry([_msg(device.pk, now, t=1)], now)
    part = await store._fetchrow("SELECT tableoid::regclass::text FROM points")
    assert part[0] == f"points_y{now.year}m{now.month:02d}"


async def test_msg_id_makes_a_replay_harmless(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    first = _msg(device.pk, T0, t=1)
    first.msg_id = "m-1"
    await store.write_telemetry([first], T0)
    replay, repeat_in_batch, other = _msg(device.pk, T0, t=1), _msg(device.pk, T0, t=1), _msg(device.pk, T0, t=2)
    replay.msg_id = repeat_in_batch.msg_id = "m-1"
    other.msg_id = "m-2"
    twice, twice_again = (
        _msg(device.pk, T0 + timedelta(seconds=1), t=3),
        _msg(device.pk, T0 + timedelta(seconds=1), t=3),
    )
    twice.msg_id = twice_again.msg_id = "m-3"
    await store.write_telemetry([replay, repeat_in_batch, other, twice, twice_again], T0)
    assert (replay.duplicate, replay.id) == (True, first.id)
    assert (repeat_in_batch.duplicate, repeat_in_batch.id) == (True, first.id)
    assert other.duplicate is False and other.id != first.id
    assert (twice.duplicate, twice_again.duplicate, twice_again.id) == (False, True, twice.id)
    assert (await store.list_messages(device_pk=device.pk))[1] == 3  # m-1, m-2, m-3 once each
    # The same msg_id from another device is another message.
    device2 = await _device(store, tenant.id, "dev-2")
    theirs = _msg(device2.pk, T0, t=9)
    theirs.msg_id = "m-1"
    await store.write_telemetry([theirs], T0)
    assert theirs.duplicate is False


async def test_a_write_cancelled_as_it_begins_leaves_no_transaction_open(store) -> None:
    # A request cancelled by its client, or a task stopped at shutdown, must not wedge the writer.
    for _ in range(3):
        writing = asyncio.create_task(store.create_tenant("never"))
        await asyncio.sleep(0)  # the write has started and waits on its first statement
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
    tenant = await store.create_tenant("after")
    assert (await store.get_tenant(tenant.id)).name == "after"


async def test_every_change_an_authentication_cache_depends_on_moves_the_credential_epoch(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    (key,) = await store.list_keys(device_pk=device.pk)
    epochs = [await store.credential_epoch()]

    async def moved() -> bool:
        epochs.append(await store.credential_epoch())
        return epochs[-1] != epochs[-2]

    # Signs of life alone (a heartbeat, the broker's connection time) leave cached copies good enough.
    await store.update_device(device.pk, {"last_seen": T0, "connection_at": T0})
    assert not await moved()
    await store.update_device(device.pk, {"status": "inactive"})
    assert await moved()
    await store.update_device(device.pk, {"attributes": {"connection": "online"}, "connection_at": T0})
    assert await moved()
    await store.expire_key(key.id, T0 + timedelta(days=1))
    assert await moved()
    await store.revoke_key(key.id, T0)
    assert await moved()
    await store.revoke_key(key.id, T0)  # already revoked: nothing changed
    assert not await moved()
    await store.delete_device(device.pk)
    assert await moved()


def _doubles(count: int, seed: int) -> list[float]:
    """Doubles from random bit patterns (every exponent ingest accepts), and the edges."""
    rng, out = (
        random.Random(seed),
        [0.0, 1e-100, -1e-100, 1e100, -1e100, 0.1, 1e23, 9007199254740993.0, 20.000000000000004],
    )
    while len(out) < count:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if MIN_ABS_NUMBER <= abs(value) <= MAX_ABS_NUMBER:  # what ingest accepts
            out.append(value)
    return out


async def test_every_value_reads_back_exactly_as_written(store: Store) -> None:
    """A batch's rows reach the database in bulk (SQLite: as one JSON text): every double comes back bit for
    bit, and strings with quotes, backslashes, control characters and any script come back unchanged."""
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)
    doubles = _doubles(2000, seed=7)
    texts = ['say "hi"', "back\\slash", "tab\tnew\nline\u0001", "ünïcødé ✓ 测试 🚀", "", "null", "[1, 2]"]
    messages = [_msg(device.pk, T0 + timedelta(milliseconds=i), x=value) for i, value in enumerate(doubles)]
    messages += [
        _msg(
            device.pk,
            T0 + timedelta(seconds=10, milliseconds=i),
            s=text,
            flag=i % 2 == 0,
            doc={"text": text, "n": doubles[i]},
        )
        for i, text in enumerate(texts)
    ]
    await store.write_telemetry(messages, T0)
    points = await store.query_points(device.pk, None, None, None, 5000, False)
    assert [struct.pack("<d", v) for _, v in points["x"]] == [struct.pack("<d", v) for v in doubles]
    assert [v for _, v in points["s"]] == texts
    assert [v for _, v in points["flag"]] == [i % 2 == 0 for i in range(len(texts))]
    assert [v for _, v in points["doc"]] == [{"text": text, "n": doubles[i]} for i, text in enumerate(texts)]
    latest = await store.latest_values(device.pk)
    assert latest["x"] == (T0 + timedelta(milliseconds=len(doubles) - 1), doubles[-1])
    assert latest["s"][1] == texts[-1]
    page, _ = await store.list_messages(device_pk=device.pk, limit=len(texts))
    assert [m.data for m in reversed(page)] == [msg.data for msg in messages[-len(texts) :]]


async def test_the_sqlite_writer_keeps_a_large_cache_and_checkpoints_seldom(sqlite_url: str) -> None:
    """A batch dirties a page per series; SQLite's defaults (2 MB cache, checkpoint every 4 MB) re-read and
    re-copy them at nearly every commit, which made ingest slow down as the database grew."""
    from telemetra.settings import Settings
    from telemetra.store import store_from_settings
    from telemetra.store.sqlite.store import WAL_CHECKPOINT_PAGES

    store = store_from_settings(Settings(database_url=sqlite_url, sqlite_cache_mb=48, _env_file=None))
    await store.open()
    try:
        writer = store._writer
        assert (await (await writer.execute("PRAGMA cache_size")).fetchone())[0] == -48 * 1024
        assert (await (await writer.execute("PRAGMA wal_autocheckpoint")).fetchone())[0] == WAL_CHECKPOINT_PAGES
        assert WAL_CHECKPOINT_PAGES > 1000  # more than SQLite's default
    finally:
        await store.close()


async def test_a_batch_that_fails_leaves_no_key_id_behind_in_the_cache(store: Store, monkeypatch) -> None:
    """A new key's id, given inside a batch that then rolls back, must not stay cached: SQLite gives that id
    to the next new key, and the cached one would file points under the wrong name."""
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id)

    def fail(*args, **kwargs):
        raise RuntimeError("the batch fails after its keys got ids")

    with monkeypatch.context() as patch:
        patch.setattr(f"telemetra.store.{store.backend}.write.plan_energy", fail)
        with pytest.raises(RuntimeError):
            await store.write_telemetry([_msg(device.pk, T0, lost=1)], T0)
    await store.write_telemetry([_msg(device.pk, T0, other=2)], T0)
    await store.write_telemetry([_msg(device.pk, T0 + timedelta(seconds=1), lost=3)], T0)
    assert await store.latest_values(device.pk) == {"other": (T0, 2.0), "lost": (T0 + timedelta(seconds=1), 3.0)}


async def test_message_ids_keep_growing_when_raw_messages_are_not_kept(database_url: str) -> None:
    """Without raw messages, ids still come from a counter that survives the batch (and the process):
    they never repeat, and a replayed msg_id answers with its first message's id."""

    def message(pk: int, second: int, msg_id: str) -> TelemetryMessage:
        ts = datetime(2026, 11, 22, 12, 0, second, tzinfo=timezone.utc)
        return TelemetryMessage(
            device_pk=pk,
            ts=ts,
            data={"t": 1.0},
            metadata={},
            type="sensor",
            points=[Point("t", ts, 1.0)],
            msg_id=msg_id,
        )

    store = store_from_url(database_url, keep_raw_messages=False)
    await store.open()
    try:
        tenant = await store.create_tenant("acme")
        secret = generate_key("device")
        device = await store.create_device(
            NewDevice(id="meter", tenant_id=tenant.id, name="meter"),
            NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
        )
        now = datetime(2026, 11, 22, 12, 1, tzinfo=timezone.utc)
        first = [message(device.pk, 1, "a"), message(device.pk, 2, "b")]
        await store.write_telemetry(first, now)
        second = [message(device.pk, 3, "c"), message(device.pk, 4, "a")]
        await store.write_telemetry(second, now)
    finally:
        await store.close()
    store = store_from_url(database_url, keep_raw_messages=False)  # a restarted process goes on counting
    await store.open()
    try:
        third = [message(device.pk, 5, "d")]
        await store.write_telemetry(third, now)
    finally:
        await store.close()

    fresh_ids = [m.id for m in first + second[:1] + third]
    assert len(set(fresh_ids)) == 4 and fresh_ids == sorted(fresh_ids)
    assert second[1].duplicate and second[1].id == first[0].id


async def test_an_id_that_no_device_can_have_is_not_looked_up(store: Store) -> None:
    """A NUL in a looked-up id failed the query on PostgreSQL (a 500 for a path, a login or a batch); an id
    without a device id's form names no device on either backend."""
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "dev-1")
    for impossible in ("dev-1\x00", "a\x00b", "\x00", "", "dev 1", "x" * 200):
        assert await store.get_device(impossible) is None
    assert set(await store.get_devices(["a\x00b", "dev-1", "\x00dev-1"])) == {"dev-1"}
    assert (await store.get_device("dev-1")).pk == device.pk


async def test_sqlite_reads_a_known_msg_id_back_whatever_its_characters(sqlite_url: str) -> None:
    """SQLite's JSON functions, through which a batch's msg_ids travel, end a string at a NUL: the lookup of
    claimed ids gave back a shorter id than the one sent, and a replay raised KeyError (the batch failed for
    ever). The validation refuses a NUL before the store; the store must still never fail on one."""
    store = store_from_url(sqlite_url)
    await store.open()
    try:
        tenant = await store.create_tenant("acme")
        device = await _device(store, tenant.id)
        first = _msg(device.pk, T0, t=1)
        first.msg_id = "a\x00b"
        await store.write_telemetry([first], T0)
        replay, other = _msg(device.pk, T0, t=1), _msg(device.pk, T0 + timedelta(seconds=1), t=2)
        replay.msg_id, other.msg_id = "a\x00b", "m-2"
        await store.write_telemetry([other, replay], T0)
        assert (replay.duplicate, replay.id) == (True, first.id)
        assert other.duplicate is False
    finally:
        await store.close()

"""Retention: a tenant's raw telemetry older than its period goes; other tenants' stays; rollups stay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.store import NewDevice, NewKey, Store, store_from_url

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


async def _tenant_with_device(store: Store, name: str) -> tuple[int, int]:
    tenant = await store.create_tenant(name)
    secret = generate_key("device")
    device = await store.create_device(
        NewDevice(id=f"{name}-dev", tenant_id=tenant.id, name="dev"),
        NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant.id),
    )
    return tenant.id, device.pk


async def _write(store: Store, pk: int, *stamps: datetime) -> None:
    await store.write_telemetry(
        [
            TelemetryMessage(
                device_pk=pk, ts=ts, data={"t": 1.0}, metadata={}, type="sensor", points=[Point("t", ts, 1.0)]
            )
            for ts in stamps
        ],
        NOW,
    )


async def _count(store: Store, pk: int) -> int:
    return len((await store.query_points(pk, ["t"], None, None, 1000, False)).get("t", []))


async def test_only_the_tenant_with_retention_loses_old_points_and_rollups_stay(store: Store) -> None:
    short, short_pk = await _tenant_with_device(store, "short")
    _, forever_pk = await _tenant_with_device(store, "forever")
    old, recent = NOW - timedelta(days=60), NOW - timedelta(days=1)
    for pk in (short_pk, forever_pk):
        await _write(store, pk, old, recent)
    await store.set_tenant_retention(short, 30)
    assert (await store.get_tenant(short)).retention_days == 30

    deleted, dropped = await store.apply_retention(NOW)

    assert deleted == 2 and dropped == []  # one point and one message; no partition while a tenant keeps all
    assert await _count(store, short_pk) == 1 and await _count(store, forever_pk) == 2
    hour = old.replace(minute=0)
    assert [
        agg.count for _, _, agg in await store.hourly_rollups([short_pk], "t", hour, hour + timedelta(hours=1))
    ] == [1]
    await store.set_tenant_retention(short, None)
    assert await store.apply_retention(NOW) == (0, [])


def _keyed(pk: int, ts: datetime, msg_id: str) -> TelemetryMessage:
    return TelemetryMessage(
        device_pk=pk, ts=ts, data={"t": 1.0}, metadata={}, type="sensor", points=[Point("t", ts, 1.0)], msg_id=msg_id
    )


async def test_retention_forgets_the_msg_ids_of_the_messages_it_deletes(store: Store) -> None:
    short, pk = await _tenant_with_device(store, "short")
    _, other_pk = await _tenant_with_device(store, "forever")
    old, recent = NOW - timedelta(days=60), NOW - timedelta(days=1)
    await store.write_telemetry(
        [_keyed(pk, old, "old"), _keyed(pk, recent, "recent"), _keyed(other_pk, old, "old")], NOW
    )
    await store.set_tenant_retention(short, 30)

    await store.apply_retention(NOW)

    again = [_keyed(pk, old, "old"), _keyed(pk, recent, "recent"), _keyed(other_pk, old, "old")]
    await store.write_telemetry(again, NOW)
    # The old message and its msg_id are gone: its replay is a new message. The recent one is still known,
    # and so is the old one of the tenant that keeps everything.
    assert [m.duplicate for m in again] == [False, True, True]
    assert (await store.list_messages(device_pk=pk))[1] == 2
    assert (await store.list_messages(device_pk=other_pk))[1] == 1


async def test_postgres_drops_a_month_no_tenant_keeps(pg_database: str) -> None:
    store = store_from_url(pg_database)
    await store.open()
    try:
        await _drops_old_months(store)
    finally:
        await store.close()


async def _drops_old_months(store: Store) -> None:
    long_ago = NOW - timedelta(days=150)
    created = await store.ensure_partitions(long_ago)
    month = f"points_y{long_ago.year}m{long_ago.month:02d}"
    assert month in created
    a, a_pk = await _tenant_with_device(store, "a")
    b, b_pk = await _tenant_with_device(store, "b")
    await _write(store, a_pk, long_ago, NOW - timedelta(days=1))
    await _write(store, b_pk, long_ago)
    await store.set_tenant_retention(a, 30)
    await store.set_tenant_retention(b, 90)

    _, dropped = await store.apply_retention(NOW)

    assert month in dropped and f"messages_y{long_ago.year}m{long_ago.month:02d}" in dropped
    # The partitions made around June (May to September); the newest one that ends before the oldest kept
    # day (90 days before NOW: 24 August) is July's.
    assert sorted(n for n in dropped if n.startswith("points_")) == [
        "points_y2026m05",
        "points_y2026m06",
        "points_y2026m07",
    ]
    assert await _count(store, a_pk) == 1 and await _count(store, b_pk) == 0

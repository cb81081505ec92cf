"""Rule shards: each held by one process at a time, shared evenly, passed on when a holder stops or dies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from telemetra.store import Store

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=15)


async def test_processes_share_the_shards_and_take_over_from_one_that_died(store: Store) -> None:
    shards = store.alerts.hold_shards
    a, total = await shards("a", T0, LEASE)
    assert total == 64 and a == set(range(64))  # alone: everything

    b, _ = await shards("b", T0, LEASE)
    assert b == set()  # all are leased to a, which has not renewed since b came
    a, _ = await shards("a", T0 + timedelta(seconds=5), LEASE)
    assert len(a) == 32  # a sees two processes and gives back its excess
    b, _ = await shards("b", T0 + timedelta(seconds=5), LEASE)
    assert len(b) == 32 and a.isdisjoint(b)

    c, _ = await shards("c", T0 + timedelta(seconds=6), LEASE)
    a, _ = await shards("a", T0 + timedelta(seconds=10), LEASE)
    b, _ = await shards("b", T0 + timedelta(seconds=10), LEASE)
    c, _ = await shards("c", T0 + timedelta(seconds=10), LEASE)
    assert sorted(map(len, (a, b, c))) == [20, 22, 22] and a | b | c == set(range(64))
    assert not (a & b or b & c or a & c)

    # c dies: it renews no more; once its lease has run out (at +25 s), the others take its shards.
    await shards("a", T0 + timedelta(seconds=20), LEASE)
    await shards("b", T0 + timedelta(seconds=20), LEASE)
    later = T0 + timedelta(seconds=26)
    a, _ = await shards("a", later, LEASE)
    b, _ = await shards("b", later, LEASE)
    assert len(a) == len(b) == 32 and a | b == set(range(64))

    await store.alerts.release_shards("b")  # a clean stop: at once, no lease to wait for
    a, _ = await shards("a", later + timedelta(seconds=1), LEASE)
    assert a == set(range(64))


async def test_the_inbox_keeps_points_until_they_are_dropped(store: Store) -> None:
    await store.alerts.push_inbox([(3, 3, T0, "t", 1.0), (5, 5, T0, "t", 2.0), (3, 67, T0 + LEASE, "t", 3.0)])
    taken = await store.alerts.peek_inbox([3], 10)
    assert [(pk, ts, key, value) for _, pk, ts, key, value in taken] == [(3, T0, "t", 1.0), (67, T0 + LEASE, "t", 3.0)]
    assert await store.alerts.peek_inbox([3], 10) == taken  # still there: the owner may die before evaluating
    await store.alerts.drop_inbox([row[0] for row in taken])
    assert await store.alerts.peek_inbox([3], 10) == []
    assert len(await store.alerts.peek_inbox([3, 5], 10)) == 1


async def test_a_batch_of_devices_is_split_by_the_shards_held_and_by_the_lease(store: Store) -> None:
    """``owned`` answers what ``owns`` answers for each device, and nothing once the lease is not trusted."""
    from telemetra.alerts.ownership import ShardOwnership

    first, second = ShardOwnership(store, owner="first"), ShardOwnership(store, owner="second")
    await first.renew()
    await second.renew()
    await first.renew()  # gives back its excess to the second process
    await second.renew()
    pks = range(1, 300)
    mine, theirs = first.owned(pks), second.owned(pks)
    assert mine == {pk for pk in pks if first.owns(pk)} and theirs == {pk for pk in pks if second.owns(pk)}
    assert mine and theirs and mine.isdisjoint(theirs) and mine | theirs == set(pks)
    await first.release()
    assert first.owned(pks) == set()
    await second.release()

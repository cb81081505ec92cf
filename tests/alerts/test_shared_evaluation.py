"""Two processes share a device's messages: the owner of its shard evaluates every point, in order, with the
whole window, whichever process committed it; when the owner stops, the other takes over."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from telemetra.alerts.engine import RuleEngine
from telemetra.alerts.ownership import ShardOwnership
from telemetra.domain.keys import generate_key, hash_key, visible_prefix
from telemetra.domain.models import Point, TelemetryMessage
from telemetra.domain.rules import parse_definition
from telemetra.store import NewDevice, NewKey, Store

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


async def _engines(store: Store) -> tuple[RuleEngine, RuleEngine]:
    a = RuleEngine(store, ownership=ShardOwnership(store, owner="a"))
    b = RuleEngine(store, ownership=ShardOwnership(store, owner="b"))
    for engine in (a, b, a, b):  # b joins, a gives back half, b takes it
        await engine._renew()
    assert len(a.ownership.shards) == len(b.ownership.shards) == 32
    return a, b


async def _device(store: Store, tenant_id: int, name: str):
    secret = generate_key("device")
    key = NewKey(kind="device", hash=hash_key(secret), prefix=visible_prefix(secret), tenant_id=tenant_id)
    return await store.create_device(NewDevice(id=name, tenant_id=tenant_id, name=name), key)


async def _commit(store: Store, device_pk: int, ts: datetime, value: float) -> list[TelemetryMessage]:
    message = TelemetryMessage(
        device_pk=device_pk, ts=ts, data={"v": value}, metadata={}, type="sensor", points=[Point("v", ts, value)]
    )
    await store.write_telemetry([message], ts)
    return [message]


async def test_the_owner_evaluates_what_the_other_process_committed(store: Store) -> None:
    a, b = await _engines(store)
    tenant = await store.create_tenant("acme")
    devices = [await _device(store, tenant.id, f"meter-{i}") for i in range(40)]  # pks on both sides
    owned_by_b = next(d for d in devices if b.ownership.owns(d.pk))
    rule = await store.alerts.create_rule(
        tenant.id, "jumps", parse_definition({"key": "v", "condition": {"type": "rate", "max_per_s": 4}}), True
    )

    # 0 and 5 alternate a second apart: 5 units/s, every step fires. a commits the 0s, b (the owner) the 5s.
    for i in range(8):
        committer = a if i % 2 == 0 else b
        await committer.on_batch(await _commit(store, owned_by_b.pk, T0 + timedelta(seconds=i), 5.0 * (i % 2)))
        assert await a.drain_inbox() == 0  # a owns none of this device's shard: it takes nothing
        await b.drain_inbox()
    alerts, _ = await store.alerts.list_alerts(tenant.id)
    assert [(x.rule_id, x.device_pk, x.count, x.status) for x in alerts] == [(rule.id, owned_by_b.pk, 7, "active")]
    assert await store.alerts.peek_inbox(list(range(64)), 10) == []  # nothing left queued

    # b stops cleanly: a takes every shard at its next renewal and carries on, window rebuilt from the store.
    await b.stop()
    await a._renew()
    assert len(a.ownership.shards) == 64
    await a.on_batch(await _commit(store, owned_by_b.pk, T0 + timedelta(seconds=8), 0.0))
    alerts, _ = await store.alerts.list_alerts(tenant.id)
    assert [x.count for x in alerts] == [8]


async def test_points_queued_for_an_owner_that_died_go_to_the_next(store: Store) -> None:
    a, b = await _engines(store)
    tenant = await store.create_tenant("acme")
    devices = [await _device(store, tenant.id, f"meter-{i}") for i in range(40)]
    owned_by_b = next(d for d in devices if b.ownership.owns(d.pk))
    await store.alerts.create_rule(
        tenant.id,
        "hot",
        parse_definition({"key": "v", "condition": {"type": "threshold", "op": ">", "value": 3}}),
        True,
    )

    await a.on_batch(await _commit(store, owned_by_b.pk, T0, 5.0))  # queued for b, which dies before taking it
    b.ownership.lease_s = 0.001  # b's last renewal, then it dies: its lease runs out at once
    await b._renew()
    await asyncio.sleep(0.01)
    await a._renew()  # a sees one process left and takes the lapsed shards
    assert len(a.ownership.shards) == 64
    assert await a.drain_inbox() == 1
    alerts, _ = await store.alerts.list_alerts(tenant.id)
    assert [(x.device_pk, x.last_value) for x in alerts] == [(owned_by_b.pk, 5.0)]

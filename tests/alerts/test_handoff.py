"""The writer hands committed batches to rule evaluation and goes on; the hand-off is bounded."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.alerts.engine import HANDOFF_BATCHES, RuleEngine
from telemetra.domain.rules import parse_definition
from telemetra.store import Store
from tests.alerts.test_shared_evaluation import _commit, _device

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


async def test_evaluation_runs_beside_the_writer_and_never_piles_up(store: Store) -> None:
    tenant = await store.create_tenant("acme")
    device = await _device(store, tenant.id, "boiler")
    await store.alerts.create_rule(
        tenant.id,
        "hot",
        parse_definition({"key": "v", "condition": {"type": "threshold", "op": ">", "value": 3}}),
        True,
    )
    engine = RuleEngine(store)
    await engine.start()
    try:
        batches = [await _commit(store, device.pk, T0 + timedelta(seconds=i), 5.0) for i in range(HANDOFF_BATCHES + 2)]
        async with engine._lock:  # evaluation is stuck (a slow database, say)
            await engine.on_batch(batches[0])  # returns at once: taken by the evaluation task, which waits
            await asyncio.sleep(0.05)
            for batch in batches[1 : HANDOFF_BATCHES + 1]:
                await asyncio.wait_for(engine.on_batch(batch), 1)  # room in the hand-off
            with pytest.raises(asyncio.TimeoutError):  # full: the writer waits instead of queueing more
                await asyncio.wait_for(engine.on_batch(batches[-1]), 0.3)
        await engine.stop()  # evaluates everything handed off before it stops
    finally:
        await engine.stop()
    alerts, _ = await store.alerts.list_alerts(tenant.id)
    assert [(a.count, a.last_value) for a in alerts] == [(HANDOFF_BATCHES + 1, 5.0)]

"""The pipeline's second line against poison: a batch the database refuses is split until only the guilty
messages are refused; a database that is down still fails the batch as retryable; one tenant holds at most
its share of the queue; a stop ends within its deadline even when a write never does."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from telemetra.domain.models import Point, TelemetryMessage
from telemetra.errors import ServiceUnavailable, StoreUnavailable, UnstorableMessage
from telemetra.ingest.pipeline import NO_REFUSALS, Overloaded, Pipeline, PipelineClosed, TenantOverloaded
from telemetra.store import NewDevice, NewKey

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


async def _device_pk(store) -> int:
    tenant = await store.create_tenant(f"acme-{uuid.uuid4().hex[:6]}")
    device = await store.create_device(
        NewDevice(id=f"dev-{uuid.uuid4().hex[:6]}", tenant_id=tenant.id, name="d"),
        NewKey(kind="device", hash=uuid.uuid4().bytes * 2, prefix="p", tenant_id=tenant.id),
    )
    return device.pk


def _msg(pk: int, i: int, tenant_id: int | None = None) -> TelemetryMessage:
    ts = T0 + timedelta(seconds=i)
    return TelemetryMessage(
        device_pk=pk,
        ts=ts,
        data={"i": i},
        metadata={},
        type="sensor",
        points=[Point("i", ts, float(i))],
        tenant_id=tenant_id,
    )


def _poison(store, pk: int, i: int) -> TelemetryMessage:
    """A prepared message the database itself refuses, built past the edge's validation: a NUL character in a
    text value (PostgreSQL cannot hold it), or a device that does not exist (SQLite's foreign key)."""
    ts = T0 + timedelta(seconds=i)
    if store.backend == "postgres":
        return TelemetryMessage(
            device_pk=pk,
            ts=ts,
            data={"i": i},
            metadata={},
            type="sensor",
            points=[Point("s", ts, "a\x00b")],
            device_id="poisoner",
        )
    return TelemetryMessage(
        device_pk=pk + 10_000,
        ts=ts,
        data={"i": i},
        metadata={},
        type="sensor",
        points=[Point("i", ts, float(i))],
        device_id="poisoner",
    )


def _rejected(source: str) -> float:
    return (
        REGISTRY.get_sample_value("telemetra_ingest_rejected_total", {"source": source, "reason": "unstorable_message"})
        or 0.0
    )


class _CountingStore:
    """The real store, counting the writes the pipeline asks of it; from ``fail_from`` on, every write fails
    as when the database has gone away."""

    def __init__(self, store, fail_from: int | None = None) -> None:
        self._store = store
        self.backend = store.backend
        self.writes = 0
        self._fail_from = fail_from

    async def write_telemetry(self, messages, received_at) -> None:
        self.writes += 1
        if self._fail_from is not None and self.writes >= self._fail_from:
            raise StoreUnavailable()
        await self._store.write_telemetry(messages, received_at)


async def test_a_refused_batch_is_split_and_only_the_guilty_messages_are_refused(store) -> None:
    pk = await _device_pk(store)
    source = f"test-{uuid.uuid4().hex[:6]}"
    counting = _CountingStore(store)
    pipeline = Pipeline(counting, max_batch_messages=1000)
    handed: list[int] = []

    async def consumer(batch):
        handed.extend(m.data["i"] for m in batch)

    pipeline.add_consumer(consumer)
    pipeline.start()
    singles = [_msg(pk, i) for i in range(40)]
    poisons = [_poison(store, pk, 100), _poison(store, pk, 101)]
    broker_batch = [_msg(pk, 200 + i) for i in range(20)]
    broker_batch[7] = _poison(store, pk, 207)  # a source's submission holds many messages: refused one by one
    results = await asyncio.gather(
        *(pipeline.submit([m], source) for m in singles[:20]),
        pipeline.submit([poisons[0]], source),
        pipeline.submit(broker_batch, source),
        pipeline.submit([poisons[1]], source),
        *(pipeline.submit([m], source) for m in singles[20:]),
    )
    await pipeline.stop()
    singles_results = results[:20] + results[23:]
    assert all(r is NO_REFUSALS for r in singles_results)
    assert list(results[20]) == [0] and isinstance(results[20][0], UnstorableMessage)
    assert list(results[22]) == [0] and isinstance(results[22][0], UnstorableMessage)
    assert list(results[21]) == [7] and results[21][7].status == 422
    good = sorted([m.data["i"] for m in singles] + [200 + i for i in range(20) if i != 7])
    stored = sorted(m.data["i"] for m in (await store.list_messages(device_pk=pk, limit=1000))[0])
    assert stored == good
    assert sorted(handed) == good  # the consumers see what was committed, once
    assert _rejected(source) == 3  # each refused message counted once
    # One batch: the whole, then halves down to each guilty message; far fewer writes than messages.
    assert 1 < counting.writes < 30


async def test_a_database_that_is_down_fails_the_batch_as_retryable_without_splitting_it(store) -> None:
    pk = await _device_pk(store)
    down = _CountingStore(store, fail_from=1)
    pipeline = Pipeline(down, max_batch_messages=1000)
    pipeline.start()
    results = await asyncio.gather(*(pipeline.submit([_msg(pk, i)], "test") for i in range(30)), return_exceptions=True)
    await pipeline.stop()
    assert all(isinstance(r, ServiceUnavailable) and r.status == 503 for r in results)
    assert down.writes == 1


async def test_the_database_going_away_while_a_batch_is_split_leaves_the_rest_retryable(store) -> None:
    pk = await _device_pk(store)
    # Write 1: the whole batch, refused for its poison; 2: the first half, committed; 3 on: the database is away.
    going = _CountingStore(store, fail_from=3)
    pipeline = Pipeline(going, max_batch_messages=1000)
    pipeline.start()
    batch = [_msg(pk, i) for i in range(8)]
    batch[6] = _poison(store, pk, 6)
    refused = await pipeline.submit(batch, "test")
    await pipeline.stop()
    assert sorted(refused) == [4, 5, 6, 7]
    assert all(isinstance(e, ServiceUnavailable) for e in refused.values())  # not refused: retry them
    stored = sorted(m.data["i"] for m in (await store.list_messages(device_pk=pk, limit=100))[0])
    assert stored == [0, 1, 2, 3]


class _GatedStore:
    """The real store, whose writes wait until the test opens the gate."""

    def __init__(self, store) -> None:
        self._store = store
        self.gate = asyncio.Event()
        self.writing = asyncio.Event()

    async def write_telemetry(self, messages, received_at) -> None:
        self.writing.set()
        await self.gate.wait()
        await self._store.write_telemetry(messages, received_at)


async def test_a_tenant_holds_at_most_its_share_of_the_queue(store) -> None:
    pk = await _device_pk(store)
    gated = _GatedStore(store)
    pipeline = Pipeline(gated, max_queue_messages=10, tenant_share=0.5)
    pipeline.start()
    a, b = 1, 2
    sent = [asyncio.ensure_future(pipeline.submit([_msg(pk, 0, a)], "test", tenant_id=a))]
    await gated.writing.wait()  # the writer holds the first message; what follows waits in the queue
    sent += [asyncio.ensure_future(pipeline.submit([_msg(pk, i, a)], "test", tenant_id=a)) for i in range(1, 6)]
    await asyncio.sleep(0)
    with pytest.raises(TenantOverloaded) as err:  # tenant A holds its 5 of 10: A alone is turned away
        await pipeline.submit([_msg(pk, 6, a)], "test", tenant_id=a)
    assert err.value.status == 429 and err.value.headers["Retry-After"]
    with pytest.raises(TenantOverloaded):
        pipeline.refuse_when_full("http", tenant_id=a)
    pipeline.refuse_when_full("http", tenant_id=b)  # B still gets in
    sent += [asyncio.ensure_future(pipeline.submit([_msg(pk, i, b)], "test", tenant_id=b)) for i in range(10, 15)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):  # the queue is full now: the whole of it, for anyone
        await pipeline.submit([_msg(pk, 20)], "test")
    gated.gate.set()
    assert await asyncio.gather(*sent) == [NO_REFUSALS] * 11
    pipeline.refuse_when_full("http", tenant_id=a)  # taken by the writer: A's share is free again
    await pipeline.stop()
    assert (await store.list_messages(device_pk=pk))[1] == 11


class _HangingStore:
    """A store whose writes never return (a database that stopped answering)."""

    backend = "hanging"

    async def write_telemetry(self, messages, received_at) -> None:
        await asyncio.Event().wait()


async def test_stop_ends_within_its_deadline_when_a_write_never_returns() -> None:
    pipeline = Pipeline(_HangingStore())
    pipeline.start()
    pending = asyncio.ensure_future(pipeline.submit([_msg(1, 0)], "test"))
    await asyncio.sleep(0.05)
    # Guarded only against a hang of the test itself; the stop is expected after its 0.2 s deadline.
    await asyncio.wait_for(pipeline.stop(timeout_s=0.2), 30)
    with pytest.raises(PipelineClosed):
        await pending

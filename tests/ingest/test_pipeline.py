"""The pipeline: group commit, bounded queue, answers only after the commit, consumers after it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from telemetra.domain.models import Point, TelemetryMessage
from telemetra.errors import UnstorableMessage
from telemetra.ingest.pipeline import NO_REFUSALS, Overloaded, Pipeline, PipelineClosed
from telemetra.store import NewDevice, NewKey

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


async def _device_pk(store) -> int:
    tenant = await store.create_tenant("acme")
    device = await store.create_device(
        NewDevice(id="dev", tenant_id=tenant.id, name="dev"),
        NewKey(kind="device", hash=b"h" * 32, prefix="p", tenant_id=tenant.id),
    )
    return device.pk


def _msg(pk: int, i: int) -> TelemetryMessage:
    ts = T0 + timedelta(seconds=i)
    return TelemetryMessage(
        device_pk=pk, ts=ts, data={"i": i}, metadata={}, type="sensor", points=[Point("i", ts, float(i))]
    )


async def test_concurrent_submissions_share_transactions(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, max_batch_messages=1000, flush_interval_s=0.02)
    committed: list[int] = []

    async def consumer(batch):
        committed.append(len(batch))

    pipeline.add_consumer(consumer)
    pipeline.start()
    messages = [_msg(pk, i) for i in range(200)]
    await asyncio.gather(*(pipeline.submit([m], "test") for m in messages))
    await pipeline.stop()
    assert all(m.id is not None for m in messages)
    assert sum(committed) == 200 and len(committed) < 20  # group commit: few transactions for 200 messages
    assert (await store.list_messages(device_pk=pk))[1] == 200


async def test_a_sender_that_goes_away_leaves_its_message_and_the_others_committed(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, max_batch_messages=1000, flush_interval_s=0.05)
    pipeline.start()
    gone = asyncio.get_running_loop().create_task(pipeline.submit([_msg(pk, 0)], "test"))
    staying = asyncio.get_running_loop().create_task(pipeline.submit([_msg(pk, 1)], "test"))
    await asyncio.sleep(0.01)
    gone.cancel()  # a client that disconnects while its message waits for the commit
    await staying
    await pipeline.stop()
    assert gone.cancelled()
    assert (await store.list_messages(device_pk=pk))[1] == 2


async def test_full_queue_refuses_and_stores_nothing_of_the_refused(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, max_batch_messages=10, flush_interval_s=0.05, max_queue_messages=10)
    pipeline.start()
    first = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(10)], "test"))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as err:
        await pipeline.submit([_msg(pk, 99)], "test")
    assert err.value.status == 503 and err.value.headers["Retry-After"]
    await first
    await pipeline.submit([_msg(pk, 100)], "test")  # room again once the writer took the batch
    await pipeline.stop()
    stored = sorted(m.data["i"] for m in (await store.list_messages(device_pk=pk, limit=100))[0])
    assert stored == list(range(10)) + [100]


async def test_wait_for_room_is_flow_control(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, max_batch_messages=5, flush_interval_s=0.01, max_queue_messages=5)
    pipeline.start()
    pending = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(5)], "test"))
    await asyncio.sleep(0)
    assert not pipeline.has_room(1)
    await asyncio.wait_for(pipeline.wait_for_room(1), 5)
    await pending
    await pipeline.stop()


async def test_a_message_of_a_missing_device_is_refused_alone(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, flush_interval_s=0.01)
    pipeline.start()
    bad = _msg(pk + 1000, 1)  # a device that does not exist (deleted meanwhile)
    good = _msg(pk, 2)
    results = await asyncio.gather(pipeline.submit([bad], "test"), pipeline.submit([good], "test"))
    await pipeline.stop()
    if store.backend == "sqlite":  # its foreign key refuses the orphan, and only the orphan
        assert [dict(r) for r in results] == [{0: results[0][0]}, {}]
        assert isinstance(results[0][0], UnstorableMessage)
        assert (await store.list_messages())[1] == 1
    else:
        # PostgreSQL's hot tables carry no foreign key: the orphan is written with its batch.
        assert results == [NO_REFUSALS, NO_REFUSALS]


async def test_stop_drains_then_refuses(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, flush_interval_s=0.05)
    pipeline.start()
    pending = asyncio.ensure_future(pipeline.submit([_msg(pk, 1)], "test"))
    await asyncio.sleep(0)
    await pipeline.stop()
    await pending  # queued before stop: committed
    with pytest.raises(PipelineClosed):
        await pipeline.submit([_msg(pk, 2)], "test")
    assert (await store.list_messages())[1] == 1


class _FirstBatchLate:
    """The real store, with the first batch held back until a later one has been written (for at most a few
    seconds: with a single writer the later one could never start, and the first then commits first)."""

    def __init__(self, store) -> None:
        self._store = store
        self.calls = 0
        self._later_written = asyncio.Event()

    async def write_telemetry(self, messages, received_at) -> None:
        self.calls += 1
        if self.calls == 1:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._later_written.wait(), 5)
            await self._store.write_telemetry(messages, received_at)
            return
        await self._store.write_telemetry(messages, received_at)
        self._later_written.set()


async def test_two_writers_commit_at_once_and_consumers_still_get_batches_in_order(store) -> None:
    pk = await _device_pk(store)
    held = _FirstBatchLate(store)
    pipeline = Pipeline(held, max_batch_messages=5, flush_interval_s=0, writers=2)
    handed: list[list[int]] = []
    answered: list[str] = []

    async def consumer(batch):
        handed.append([m.data["i"] for m in batch])

    async def submit(name: str, messages: list[TelemetryMessage]) -> None:
        await pipeline.submit(messages, "test")
        answered.append(name)

    pipeline.add_consumer(consumer)
    pipeline.start()
    first = asyncio.ensure_future(submit("first", [_msg(pk, i) for i in range(5)]))
    while not held.calls:  # the first batch is taken (and held back) before the second arrives
        await asyncio.sleep(0.005)
    await asyncio.gather(first, submit("second", [_msg(pk, i) for i in range(5, 10)]))
    await pipeline.stop()
    assert answered == ["second", "first"]  # written at once: the second did not wait for the first
    assert handed == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]  # but consumers got them in arrival order
    assert (await store.list_messages(device_pk=pk))[1] == 10

"""The pipeline: group commit with a cadence that adapts (an idle writer at once, a busy one gathers), bounded
queue, answers only after the commit, consumers after it."""

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


class _Counting:
    """The real store, recording the size of every batch the pipeline writes; with ``held``, each write waits
    until the test releases it (a commit that takes long, made deterministic)."""

    def __init__(self, store, *, held: bool = False) -> None:
        self._store = store
        self.backend = store.backend
        self.batches: list[int] = []
        self.writing = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    async def write_telemetry(self, messages, received_at) -> None:
        self.batches.append(len(messages))
        self.writing.set()
        await self.release.wait()
        await self._store.write_telemetry(messages, received_at)


async def _turns(n: int = 5) -> None:
    """Let the event loop run ``n`` times without letting any timer's time pass on purpose."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_an_idle_writer_commits_a_lone_message_at_once(store) -> None:
    pk = await _device_pk(store)
    counting = _Counting(store, held=True)  # held: the write is seen starting, before anything commits
    pipeline = Pipeline(counting, max_batch_messages=1000, writers=1)
    pipeline.start()
    lone = asyncio.ensure_future(pipeline.submit([_msg(pk, 0)], "test"))
    # A few turns of the loop, no time: a writer that waited for company (a linger timer) would not have
    # started the write yet, and an idle one has.
    await _turns()
    assert counting.batches == [1]
    counting.release.set()
    assert await lone is NO_REFUSALS
    for i in range(1, 4):  # one after the other, as a device that waits for each answer: a commit each
        assert await pipeline.submit([_msg(pk, i)], "test") is NO_REFUSALS
    await pipeline.stop()
    assert counting.batches == [1, 1, 1, 1]
    assert (await store.list_messages(device_pk=pk))[1] == 4


@pytest.mark.parametrize("writers", [1, 2])
async def test_a_burst_while_the_writers_are_busy_is_grouped_into_few_commits(store, writers: int) -> None:
    pk = await _device_pk(store)
    counting = _Counting(store, held=True)
    pipeline = Pipeline(counting, max_batch_messages=1000, writers=writers)
    pipeline.start()
    first = []
    for i in range(writers):  # each message arrives alone and an idle writer takes it at once
        first.append(asyncio.ensure_future(pipeline.submit([_msg(pk, i)], "test")))
        await _turns()
    assert counting.batches == [1] * writers
    burst = [asyncio.ensure_future(pipeline.submit([_msg(pk, 100 + i)], "test")) for i in range(300)]
    await _turns()
    assert counting.batches == [1] * writers  # every writer busy: the burst waits in the queue, together
    assert pipeline.queued_messages == 300
    counting.release.set()
    assert await asyncio.gather(*first, *burst) == [NO_REFUSALS] * (writers + 300)
    await pipeline.stop()
    assert counting.batches == [1] * writers + [300]  # the burst went in the next transaction, whole
    assert (await store.list_messages(device_pk=pk))[1] == writers + 300


async def test_a_burst_larger_than_a_batch_is_cut_at_the_batch_size(store) -> None:
    pk = await _device_pk(store)
    counting = _Counting(store)
    pipeline = Pipeline(counting, max_batch_messages=50, writers=1)
    pipeline.start()
    await asyncio.gather(*(pipeline.submit([_msg(pk, i)], "test") for i in range(120)))
    await pipeline.stop()
    assert counting.batches == [50, 50, 20]


async def test_concurrent_submissions_share_transactions(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store, max_batch_messages=1000)
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
    held = _Counting(store, held=True)
    pipeline = Pipeline(held, max_batch_messages=1000)
    pipeline.start()
    gone = asyncio.get_running_loop().create_task(pipeline.submit([_msg(pk, 0)], "test"))
    staying = asyncio.get_running_loop().create_task(pipeline.submit([_msg(pk, 1)], "test"))
    await held.writing.wait()
    gone.cancel()  # a client that disconnects while its message waits for the commit
    held.release.set()
    await staying
    await pipeline.stop()
    assert gone.cancelled()
    assert (await store.list_messages(device_pk=pk))[1] == 2


async def test_full_queue_refuses_and_stores_nothing_of_the_refused(store) -> None:
    pk = await _device_pk(store)
    held = _Counting(store, held=True)
    pipeline = Pipeline(held, max_batch_messages=10, max_queue_messages=10, writers=1)
    pipeline.start()
    writing = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(10)], "test"))
    await held.writing.wait()  # the writer holds the first ten; the next ten fill the queue
    queued = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(10, 20)], "test"))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded) as err:
        await pipeline.submit([_msg(pk, 99)], "test")
    assert err.value.status == 503 and err.value.headers["Retry-After"]
    held.release.set()
    await asyncio.gather(writing, queued)
    await pipeline.submit([_msg(pk, 100)], "test")  # room again once the writer took the batch
    await pipeline.stop()
    stored = sorted(m.data["i"] for m in (await store.list_messages(device_pk=pk, limit=100))[0])
    assert stored == list(range(20)) + [100]


async def test_wait_for_room_is_flow_control(store) -> None:
    pk = await _device_pk(store)
    held = _Counting(store, held=True)
    pipeline = Pipeline(held, max_batch_messages=5, max_queue_messages=5, writers=1)
    pipeline.start()
    writing = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(5)], "test"))
    await held.writing.wait()
    pending = asyncio.ensure_future(pipeline.submit([_msg(pk, i) for i in range(5, 10)], "test"))
    await asyncio.sleep(0)
    assert not pipeline.has_room(1)
    waiter = asyncio.ensure_future(pipeline.wait_for_room(1))
    await _turns()
    assert not waiter.done()  # no room while the writer holds a batch and five wait
    held.release.set()
    await asyncio.wait_for(waiter, 5)
    await asyncio.gather(writing, pending)
    await pipeline.stop()


async def test_a_message_of_a_missing_device_is_refused_alone(store) -> None:
    pk = await _device_pk(store)
    pipeline = Pipeline(store)
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
    pipeline = Pipeline(store)
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
    pipeline = Pipeline(held, max_batch_messages=5, writers=2)
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

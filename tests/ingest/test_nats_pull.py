"""PullConsumer on a real nats-server (our own, on a free port): batches, waiting, and what stop hands back."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from telemetra.ingest.sources.nats_pull import PullConsumer
from tests.brokers import start_nats

ACK_WAIT_S = 60.0  # longer than any test: a message seen again was handed back, not timed out


@pytest.fixture
async def jetstream(tmp_path):
    server = start_nats(tmp_path)
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}")
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="PULL", subjects=["pull.>"]))
    await js.add_consumer("PULL", ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S))
    yield nc, js
    await nc.close()
    server.stop()


async def _consumer(nc) -> PullConsumer:
    consumer = PullConsumer(nc, "PULL", "d")
    await consumer.start()
    return consumer


async def test_fetch_takes_what_is_there_in_batches_in_stream_order(jetstream) -> None:
    nc, js = jetstream
    for i in range(25):
        await js.publish(f"pull.dev{i % 3}", str(i).encode())
    consumer = await _consumer(nc)
    got = []
    for _ in range(3):
        batch = await consumer.fetch(10, timeout=5)
        assert len(batch) <= 10
        got += batch
    assert [int(m.data) for m in got] == list(range(25))
    assert got[4].subject == "pull.dev1"  # the stream subject, which names the device
    for msg in got:
        await msg.ack()
    started = time.monotonic()
    assert await consumer.fetch(10, timeout=0.5) == []  # nothing left: empty once the wait is over
    assert time.monotonic() - started >= 0.4
    await consumer.stop()


async def test_fetch_with_nothing_there_returns_the_first_message_to_arrive(jetstream) -> None:
    nc, js = jetstream
    consumer = await _consumer(nc)

    async def publish_later() -> None:
        await asyncio.sleep(0.3)
        await js.publish("pull.dev1", b"late")

    started = time.monotonic()
    publisher = asyncio.ensure_future(publish_later())
    batch = await consumer.fetch(100, timeout=3)
    waited = time.monotonic() - started
    await publisher
    assert [m.data for m in batch] == [b"late"]
    assert waited < 2  # the message ended the wait, not the timeout
    await batch[0].ack()
    await consumer.stop()


async def test_deliveries_not_taken_are_handed_back_at_stop(jetstream) -> None:
    nc, js = jetstream
    first = await _consumer(nc)
    fetching = asyncio.ensure_future(first.fetch(5, timeout=2))  # nothing there: a request stays open
    await asyncio.sleep(0.2)
    await js.publish("pull.dev1", b"0")
    taken = await fetching
    assert [m.data for m in taken] == [b"0"]
    await taken[0].ack()
    for i in range(1, 4):  # delivered to the request still open, never taken
        await js.publish("pull.dev1", str(i).encode())
    deadline = time.monotonic() + 5
    while first.held < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert first.held == 3
    await first.stop()  # waits the open request out, then hands back what it held
    second = await _consumer(nc)
    again = await second.fetch(10, timeout=2)  # handed back: redelivered now, not after ack_wait
    assert [m.data for m in again] == [b"1", b"2", b"3"]
    await second.stop()

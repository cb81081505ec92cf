"""The ingest pipeline: a bounded queue, a writer that commits batches, then post-commit consumers.

Sources submit validated messages and wait; the writer commits what is queued (up to
``max_batch_messages``) in one transaction, and only then resolves every waiting submission (group commit).
The cadence adapts to the load, with no fixed wait: an idle writer takes a message the moment it arrives,
and while every writer is busy what arrives gathers in the queue and goes in the next transaction, taken
the moment a writer is free. So a lone message costs one commit and no wait, and under load the batches
grow with the time a commit takes: the busier the database, the fewer and fuller the transactions. A
full queue refuses new work at once (``Overloaded``): HTTP answers 503, the brokers' sources stop
pulling. A tenant may hold at most ``tenant_share`` of the queue (``TenantOverloaded``, 429, for that
tenant alone), so that one tenant's flood never turns another's requests away.

A batch the database refuses for what it holds (``UnstorableMessage``: a NUL character, a number it cannot
hold) is written again in halves, each its own transaction, the refused halves halved again down to single
messages (``refused_batch.py``): only the messages at fault are refused, and everything else of the batch
commits. A batch that
fails because the database is down fails whole, as before, and its senders retry.

With ``writers`` > 1, that many batches are in the store's hands at once. On PostgreSQL each is written
in its own transaction on its own connection: the database works on one batch while Python prepares the
next, and two batches of different devices do not wait for each other. On SQLite the next batch waits on
the writer's thread and starts the moment the previous one commits, without waiting for the event loop. Batches are taken in arrival order, and handed to the
consumers in that order whatever order they commit in, so a device's points still reach them oldest
first.

Committed batches go to the post-commit consumers (rule evaluation) through a second, short queue served
by its own task: the writer commits the next batch meanwhile, and waits only when
``MAX_BATCHES_AWAITING_CONSUMERS`` batches are still unprocessed (so that queue stays bounded too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Awaitable, Callable, Protocol

from telemetra.domain.models import TelemetryMessage
from telemetra.domain.timeparse import utcnow
from telemetra.errors import ServiceUnavailable, TelemetraError, TooManyRequests, UnstorableMessage
from telemetra.ingest import metrics
from telemetra.ingest.refusals import RefusalLog
from telemetra.ingest.refused_batch import isolate_refused, refusal_cause, retryable_error
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = [
    "Pipeline",
    "Overloaded",
    "TenantOverloaded",
    "PostCommitConsumer",
    "PipelineClosed",
    "Refusals",
    "NO_REFUSALS",
]

OVERLOAD_RETRY_AFTER_S = "1"
# One INFO line per this many seconds at most, and only after a commit: a busy pipeline commits hundreds of
# batches a second, and a line every few seconds for ever buries the lines that matter.
SUMMARY_INTERVAL_S = 60.0
# Committed batches the consumers may lag behind by: one being processed, one waiting.
MAX_BATCHES_AWAITING_CONSUMERS = 2
# After the stop deadline, how long cancelled writes get to unwind (a cancelled SQLite write still runs to its
# end on the writer's thread; PostgreSQL gets a cancel request).
CANCELLED_WRITES_WAIT_S = 2.0

# What ``submit`` answers: the index (in the submission) of each message not committed, with why.
Refusals = Mapping[int, TelemetraError]
NO_REFUSALS: Refusals = MappingProxyType({})


class Overloaded(ServiceUnavailable):
    code = "overloaded"
    default_message = "Telemetra is receiving more than it can write; retry after the Retry-After delay."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": OVERLOAD_RETRY_AFTER_S})


class TenantOverloaded(TooManyRequests):
    code = "tenant_queue_full"
    default_message = (
        "Your tenant already has as many messages waiting for the writer as one tenant may; "
        "retry after the Retry-After delay."
    )

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": OVERLOAD_RETRY_AFTER_S})


class PipelineClosed(ServiceUnavailable):
    code = "shutting_down"
    default_message = "Telemetra is shutting down; retry on another instance or in a moment."


class PostCommitConsumer(Protocol):
    async def __call__(self, messages: list[TelemetryMessage]) -> None: ...


@dataclass(slots=True)
class _Submission:
    messages: list[TelemetryMessage]
    source: str
    tenant_id: int | None
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Pipeline:
    """Batch, commit, then notify. One per process; start() before use, stop() to drain."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch_messages: int = 2000,
        max_queue_messages: int = 20_000,
        writers: int = 1,
        tenant_share: float = 1.0,
    ) -> None:
        self._store = store
        self.writers = max(1, writers)
        self._slots = asyncio.Semaphore(self.writers)
        self._in_flight: set[asyncio.Task] = set()
        # Set once the batch taken last has been handed to the consumers (or has failed).
        self._handed_last: asyncio.Future | None = None
        self.max_batch_messages = max_batch_messages
        self.max_queue_messages = max_queue_messages
        self._queue: deque[_Submission] = deque()
        self._queued_messages = 0
        # Messages queued per tenant, for the submissions that name one (HTTP). The brokers' sources do not:
        # their messages, of every tenant at once, are bounded by their own in-flight window.
        self._queued_by_tenant: dict[int, int] = {}
        self.tenant_share = tenant_share
        self._tenant_cap = max(1, int(max_queue_messages * tenant_share))
        self._refusals = RefusalLog(logger)
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._consumers: list[Callable[[list[TelemetryMessage]], Awaitable[None]]] = []
        self._committed: asyncio.Queue[list[TelemetryMessage]] = asyncio.Queue(MAX_BATCHES_AWAITING_CONSUMERS)
        self._writer: asyncio.Task | None = None
        self._notifier: asyncio.Task | None = None
        self._closing = False
        self._summary = {"batches": 0, "messages": 0, "since": time.monotonic()}

    @property
    def queued_messages(self) -> int:
        return self._queued_messages

    def add_consumer(self, consumer: Callable[[list[TelemetryMessage]], Awaitable[None]]) -> None:
        """Call ``consumer(batch)`` after each commit (rollups, rules, live streams)."""
        self._consumers.append(consumer)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Read when /metrics is scraped rather than written at every message.
        metrics.QUEUE_DEPTH.set_function(lambda: self._queued_messages)
        self._writer = loop.create_task(self._run(), name="ingest-writer")
        self._notifier = loop.create_task(self._notify_consumers(), name="ingest-post-commit")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Refuse new work, commit what is queued, then stop the writer; all within ``timeout_s``: writes
        still running then are cancelled and their senders told ``PipelineClosed`` (a broker source leaves
        those messages unacknowledged, for the broker to send again)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._closing = True
        self._arrived.set()
        self._room.set()  # sources waiting for room see the close
        if self._writer is not None:
            done, _ = await asyncio.wait({self._writer}, timeout=max(0.0, deadline - loop.time()))
            if not done:
                logger.error(
                    "pipeline stop: %d messages not committed within %.0fs; cancelling the writes",
                    self._queued_messages + sum(len(s.messages) for s in self._queue),
                    timeout_s,
                )
                self._writer.cancel()
                for task in self._in_flight:
                    task.cancel()
                await asyncio.wait({self._writer, *self._in_flight}, timeout=CANCELLED_WRITES_WAIT_S)
            self._writer = None
        if self._notifier is not None:
            try:
                await asyncio.wait_for(self._committed.join(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                logger.error("pipeline stop: post-commit consumers did not finish within %.0fs", timeout_s)
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
            self._notifier = None
        for sub in self._queue:
            if not sub.done.done():
                sub.done.set_exception(PipelineClosed())
        self._queue.clear()
        self._queued_by_tenant.clear()

    def has_room(self, count: int) -> bool:
        return self._queued_messages + count <= self.max_queue_messages or not self._queue

    def refuse_when_full(self, source: str, count: int = 1, tenant_id: int | None = None) -> None:
        """Raise Overloaded (PipelineClosed when stopping) unless ``count`` more messages fit, and
        TenantOverloaded when ``tenant_id`` already holds its share of the queue. An HTTP route calls it
        before reading its body: under overload a request turned away after its body was parsed and
        validated is work thrown away, taken from the requests that do get in."""
        if self._closing:
            raise PipelineClosed()
        if tenant_id is not None:
            held = self._queued_by_tenant.get(tenant_id, 0)
            # A tenant with nothing queued always gets in (a batch larger than the share included), as an
            # empty queue takes any batch.
            if held and held + count > self._tenant_cap:
                metrics.TENANT_OVER_SHARE.labels(source).inc()
                raise TenantOverloaded()
        if not self.has_room(count):
            metrics.OVERLOADED.labels(source).inc()
            raise Overloaded()

    async def wait_for_room(self, count: int) -> None:
        """Wait until ``count`` messages fit (flow control for broker sources)."""
        while not self.has_room(count) and not self._closing:
            self._room.clear()
            await self._room.wait()

    async def submit(self, messages: list[TelemetryMessage], source: str, *, tenant_id: int | None = None) -> Refusals:
        """Queue messages and return once they are committed; Overloaded when the queue is full.

        Returns the messages (by index in ``messages``) that were not committed, with why; empty (the
        shared ``NO_REFUSALS``) when all were. ``UnstorableMessage``: the database refuses that message
        and always will (the others of the submission are committed). ``ServiceUnavailable``: the database
        went away while a refused batch was being split; those may be retried. When the database fails
        every message of the submission alike (it is down), this raises instead, as when the queue is full.

        The submission goes in the next transaction a writer takes: at once when one is free, else with
        whatever else arrives until one is (no fixed wait: a sender that waits for its answer before
        sending more gains nothing from one, and under load the queue fills the batches by itself).
        ``tenant_id``: the one tenant of the messages, counted against its share of the queue."""
        self.refuse_when_full(source, len(messages), tenant_id)
        sub = _Submission(messages, source, tenant_id)
        self._queue.append(sub)
        self._queued_messages += len(messages)
        if tenant_id is not None:
            self._queued_by_tenant[tenant_id] = self._queued_by_tenant.get(tenant_id, 0) + len(messages)
        self._arrived.set()
        # Awaited directly, not through asyncio.shield (one more future and loop callback per message): a
        # sender that goes away cancels only its own future, which the writer then skips; its messages are
        # committed all the same.
        return await sub.done

    def _take_batch(self) -> list[_Submission]:
        batch: list[_Submission] = []
        count = 0
        while self._queue and (not batch or count + len(self._queue[0].messages) <= self.max_batch_messages):
            sub = self._queue.popleft()
            batch.append(sub)
            count += len(sub.messages)
            if sub.tenant_id is not None:
                held = self._queued_by_tenant[sub.tenant_id] - len(sub.messages)
                if held:
                    self._queued_by_tenant[sub.tenant_id] = held
                else:
                    del self._queued_by_tenant[sub.tenant_id]
        self._queued_messages -= count
        if self.has_room(1):
            self._room.set()
        return batch

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._arrived.clear()
                    await self._arrived.wait()
                    continue
                # A free writer first, then the batch: what arrives while all are busy joins the next one. No
                # timer: an idle writer commits a lone message at once, and a busy one is the wait that
                # groups (the longer a commit takes, the more the next batch holds).
                await self._slots.acquire()
                batch = self._take_batch()
                handed = asyncio.get_running_loop().create_future()
                task = asyncio.get_running_loop().create_task(
                    self._commit(batch, self._handed_last, handed), name="ingest-commit"
                )
                self._handed_last = handed
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
        finally:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _commit(
        self, batch: list[_Submission], handed_before: asyncio.Future | None, handed: asyncio.Future
    ) -> None:
        try:
            fresh = await self._write(batch)
            if handed_before is not None:
                await handed_before  # consumers see batches in the order they were taken
            if fresh is not None and self._consumers:
                await self._committed.put(fresh)
        finally:
            if not handed.done():
                handed.set_result(None)
            self._slots.release()

    async def _write(self, batch: list[_Submission]) -> list[TelemetryMessage] | None:
        """Commit a batch and answer its submissions; return its new messages, None when it failed."""
        messages = [m for sub in batch for m in sub.messages]
        started = time.perf_counter()
        failed: dict[int, TelemetraError] = {}  # index in ``messages`` -> why it was not committed
        try:
            try:
                await self._store.write_telemetry(messages, utcnow())
            except UnstorableMessage as exc:
                failed = await isolate_refused(self._store, messages, exc)
        except asyncio.CancelledError:  # stopped past its deadline
            self._fail(batch, PipelineClosed())
            raise
        except Exception as exc:
            self._fail(batch, retryable_error(exc, len(messages)))
            return None
        elapsed = time.perf_counter() - started
        metrics.COMMIT_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(len(messages) - len(failed))
        if failed:
            counts = self._answer_split(batch, failed)
        else:
            # Counted per source once a batch: a batch of single HTTP messages holds hundreds of submissions.
            counts = {}  # source -> [stored, duplicates, points]
            for sub in batch:
                count = counts.setdefault(sub.source, [0, 0, 0])
                for message in sub.messages:
                    if message.duplicate:
                        count[1] += 1
                    else:
                        count[0] += 1
                        count[2] += len(message.points)
                if not sub.done.done():
                    sub.done.set_result(NO_REFUSALS)
        for source, (stored, duplicates, points) in counts.items():
            metrics.MESSAGES.labels(source, "stored").inc(stored)
            if duplicates:
                metrics.MESSAGES.labels(source, "duplicate").inc(duplicates)
            metrics.POINTS.labels(source).inc(points)
        self._log_summary(len(messages) - len(failed), elapsed)
        return [m for i, m in enumerate(messages) if not m.duplicate and i not in failed]

    def _answer_split(self, batch: list[_Submission], failed: dict[int, TelemetraError]) -> dict[str, list[int]]:
        """Answer the submissions of a split batch; return its counts per source as ``_write`` keeps them."""
        counts: dict[str, list[int]] = {}
        offset = 0
        for sub in batch:
            count = counts.setdefault(sub.source, [0, 0, 0])
            mine: dict[int, TelemetraError] = {}
            for i, message in enumerate(sub.messages):
                error = failed.get(offset + i)
                if error is not None:
                    mine[i] = error
                    if isinstance(error, UnstorableMessage):  # counted and logged here, once, for every source
                        metrics.REJECTED.labels(sub.source, error.code).inc()
                        self._refusals.refused(sub.source, error.code, message.device_id, refusal_cause(error))
                elif message.duplicate:
                    count[1] += 1
                else:
                    count[0] += 1
                    count[2] += len(message.points)
            offset += len(sub.messages)
            if sub.done.done():
                continue
            if (
                mine
                and len(mine) == len(sub.messages)
                and not any(isinstance(e, UnstorableMessage) for e in mine.values())
            ):
                sub.done.set_exception(next(iter(mine.values())))  # none committed, all retryable
            else:
                sub.done.set_result(mine or NO_REFUSALS)
        return counts

    @staticmethod
    def _fail(batch: list[_Submission], error: BaseException) -> None:
        for sub in batch:
            if not sub.done.done():
                sub.done.set_exception(error)

    async def _notify_consumers(self) -> None:
        while True:
            fresh = await self._committed.get()
            for consumer in self._consumers:
                try:
                    await consumer(fresh)
                except Exception:
                    logger.exception("post-commit consumer %r failed", consumer)
            self._committed.task_done()

    def _log_summary(self, count: int, elapsed: float) -> None:
        summary = self._summary
        summary["batches"] += 1
        summary["messages"] += count
        logger.debug("batch committed messages=%d in %.1f ms", count, elapsed * 1000)
        span = time.monotonic() - summary["since"]
        if span >= SUMMARY_INTERVAL_S:
            logger.info(
                "ingest: %d messages in %d batches over %.0fs (%.0f msg/s), queue %d",
                summary["messages"],
                summary["batches"],
                span,
                summary["messages"] / span,
                self._queued_messages,
            )
            self._summary = {"batches": 0, "messages": 0, "since": time.monotonic()}

"""NatsSource: a durable JetStream pull consumer, fetching in batches, acknowledging after the commit.

Batches are pulled by ``PullConsumer`` (one wait per pull request, not per message).

The stream takes ``telemetry.<device_id>`` and ``devices.<device_id>.telemetry`` (the subject NATS's own
MQTT gateway gives the topic ``devices/<device_id>/telemetry``). Every worker binds to the same durable
consumer, so they split the messages; one that dies leaves its unacknowledged messages to be redelivered
after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import nats
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from nats.js.errors import NotFoundError

from telemetra.domain.jsonbody import PayloadLimits, decode_payload
from telemetra.domain.timeparse import utcnow
from telemetra.errors import TelemetraError, UnstorableMessage
from telemetra.ingest import metrics
from telemetra.ingest.device_cache import DeviceCache
from telemetra.ingest.pipeline import Pipeline, PipelineClosed
from telemetra.ingest.refusals import RefusalLog
from telemetra.ingest.service import TelemetryService
from telemetra.ingest.sources.nats_pull import PullConsumer
from telemetra.nats_connection import NatsTls, connect_nats, url_without_credentials

logger = logging.getLogger(__name__)
__all__ = ["NatsSource", "NatsConfig", "STREAM_SUBJECTS", "device_from_subject"]

STREAM_SUBJECTS = ["telemetry.>", "devices.*.telemetry"]
SOURCE = "nats"
FETCH_TIMEOUT_S = 1.0
# Fetched batches on their way to the writer at once: the next are fetched and validated while others commit
# (with two writers, a fetch, a validation and two commits overlap; more in flight hid the round trips best).
CONCURRENT_SUBMISSIONS = 6
RETRY_MIN_DELAY_S, RETRY_MAX_DELAY_S = 0.5, 10.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class NatsConfig:
    url: str
    stream: str = "TELEMETRY"
    durable: str = "telemetra"
    fetch_batch: int = 500
    ack_wait_s: float = 60.0  # longer than any commit; a dead worker's messages come back after it
    tls: NatsTls | None = None


def device_from_subject(subject: str) -> str | None:
    """Return the device id a subject names, or None for a subject we do not take."""
    if subject.startswith("telemetry.") and len(subject) > len("telemetry."):
        return subject[len("telemetry.") :]
    if subject.startswith("devices.") and subject.endswith(".telemetry"):
        middle = subject[len("devices.") : -len(".telemetry")]
        return middle or None
    return None


class NatsSource:
    def __init__(
        self,
        config: NatsConfig,
        telemetry: TelemetryService,
        pipeline: Pipeline,
        devices: DeviceCache,
        *,
        limits: PayloadLimits,
    ) -> None:
        self.config = config
        self._limits = limits
        self._telemetry = telemetry
        self._pipeline = pipeline
        self._devices = devices
        self._nc: nats.NATS | None = None
        self._consumer: PullConsumer | None = None
        self._task: asyncio.Task | None = None
        self._slots = asyncio.Semaphore(CONCURRENT_SUBMISSIONS)
        self._in_flight: set[asyncio.Task] = set()
        self._stopping = False
        self._stopped = asyncio.Event()  # set with _stopping: cuts a retry's wait short
        self._refusals = RefusalLog(logger)

    async def start(self) -> None:
        """Connect, make sure the stream and the durable consumer exist, and start fetching."""
        self._nc = nc = await connect_nats(self.config.url, self.config.tls)
        js = nc.jetstream()
        await ensure_stream(js, self.config.stream)
        await js.add_consumer(
            self.config.stream,
            ConsumerConfig(
                durable_name=self.config.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.config.ack_wait_s,
                max_ack_pending=max(10 * self.config.fetch_batch, 10_000),
            ),
        )
        self._consumer = PullConsumer(nc, self.config.stream, self.config.durable)
        await self._consumer.start()
        logger.info(
            "nats consuming stream %s as %s from %s",
            self.config.stream,
            self.config.durable,
            url_without_credentials(self.config.url),
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="nats-consumer")

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Finish the batches in hand (commit and ack them; within ``timeout_s``, and a batch that fails
        meanwhile is not retried but handed back), then disconnect."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._stopping = True
        self._stopped.set()
        # The fetch loop first: a batch it fetched meanwhile joins those in flight.
        fetching = {self._task} if self._task is not None else set()
        for running in (fetching, self._in_flight):
            if running:
                _, late = await asyncio.wait(set(running), timeout=max(0.0, deadline - loop.time()))
                for task in late:
                    task.cancel()  # unacknowledged: JetStream redelivers them after ack_wait
                await asyncio.gather(*late, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._nc is not None:
            # Not drain(): draining a pull subscription waits out its timeout. The acks are already
            # written; flush sends them before the connection closes.
            try:
                await self._nc.flush(timeout=5)
            finally:
                await self._nc.close()

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None  # start() sets it before it starts this task
        while not self._stopping:
            await self._pipeline.wait_for_room(self.config.fetch_batch)
            await self._slots.acquire()
            if self._stopping:  # the slot came free as a batch in hand finished at stop
                self._slots.release()
                break
            try:
                msgs = await consumer.fetch(self.config.fetch_batch, FETCH_TIMEOUT_S)
            except Exception as exc:  # connection trouble: the client reconnects by itself
                self._slots.release()
                logger.warning("nats fetch failed: %s", exc)
                await asyncio.sleep(RETRY_MIN_DELAY_S)
                continue
            if not msgs:
                self._slots.release()
                continue
            try:
                to_store = await self._validate(msgs)
            except Exception:  # unacknowledged: JetStream redelivers them after ack_wait
                self._slots.release()
                logger.exception("nats batch of %d not validated", len(msgs))
                continue
            # Validated (and stamped) in fetch order here; the pipeline takes submissions in the order the
            # tasks start, so a device's messages are committed in the order the stream holds them.
            task = asyncio.get_running_loop().create_task(self._commit_and_ack(to_store))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _validate(self, msgs: list) -> list:
        """Return (JetStream message, TelemetryMessage) pairs to store; terminate those that never can be."""
        now = utcnow()
        named = [(msg, device_from_subject(msg.subject)) for msg in msgs]
        devices = await self._devices.resolve({d for _, d in named if d})
        to_store, refused = [], []
        for msg, device_id in named:
            device = devices.get(device_id) if device_id else None
            if device is None:
                metrics.REJECTED.labels(SOURCE, "unknown_device").inc()
                self._refusals.refused(
                    SOURCE, "unknown_device", device_id, f"no registered device on {msg.subject[:200]!r}"
                )
                refused.append(msg)
                continue
            try:
                doc = decode_payload(msg.data, self._limits)
            except TelemetraError as exc:
                metrics.REJECTED.labels(SOURCE, exc.code).inc()
                self._refusals.refused(SOURCE, exc.code, device_id, exc.message)
                refused.append(msg)
                continue
            try:
                to_store.append((msg, self._telemetry.prepare(device, doc, now, source=SOURCE)))
            except TelemetraError as exc:  # prepare counted it
                self._refusals.refused(SOURCE, exc.code, device_id, exc.message)
                refused.append(msg)
        for msg in refused:
            await msg.term()  # never redeliver what can never be stored
        return to_store

    async def _commit_and_ack(self, to_store: list) -> None:
        try:
            if to_store:
                await self._store_until_done(to_store)
        except Exception:  # unacknowledged: JetStream redelivers them after ack_wait
            logger.exception("nats batch of %d not stored", len(to_store))
        finally:
            self._slots.release()

    async def _store_until_done(self, to_store: list) -> None:
        """Submit; ack what is committed, terminate what the database can never store (the pipeline
        counted and logged those), and retry the rest while the database is down. At stop, hand the rest
        back (``nak``) for another worker, or this one's next start, to take."""
        delay = RETRY_MIN_DELAY_S
        while True:
            try:
                refused = await self._pipeline.submit([m for _, m in to_store], SOURCE)
            except PipelineClosed:
                return  # unacknowledged: JetStream redelivers them after ack_wait
            except TelemetraError as exc:
                code = exc.code
            else:
                retry = []
                for i, (msg, _) in enumerate(to_store):
                    error = refused.get(i)
                    if error is None:
                        await msg.ack()
                    elif isinstance(error, UnstorableMessage):
                        await msg.term()  # never redeliver what can never be stored
                    else:
                        retry.append(i)
                if not retry:
                    return
                code = refused[retry[0]].code
                to_store = [to_store[i] for i in retry]
            if not self._stopping:
                logger.warning("nats batch of %d not committed (%s); retrying in %.1fs", len(to_store), code, delay)
                try:  # a stop cuts the wait short
                    await asyncio.wait_for(self._stopped.wait(), delay)
                except asyncio.TimeoutError:
                    delay = min(delay * 2, RETRY_MAX_DELAY_S)
                    continue
            for msg, _ in to_store:
                await msg.nak()
            return


async def ensure_stream(js, name: str) -> None:
    """Create the telemetry stream, or add our subjects to an existing one."""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=name, subjects=STREAM_SUBJECTS))
        return
    missing = [s for s in STREAM_SUBJECTS if s not in (info.config.subjects or [])]
    if missing:
        await js.update_stream(info.config.evolve(subjects=[*(info.config.subjects or []), *missing]))

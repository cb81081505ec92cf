"""MqttSource: devices/{id}/telemetry over MQTT, acknowledged to the broker only after the commit.

paho-mqtt's network I/O is driven by the event loop (``PahoAsyncio``), so its callbacks run there. QoS 1
messages are acknowledged manually (``manual_ack``) once their batch is committed. With a persistent
session (MQTT 5: ``clean_start=False`` and a session expiry) and a stable client id, messages not yet
acknowledged when a worker dies are delivered to it again when it comes back, and the broker queues for it
what is published while it is away.

The subscription is plain unless a share group is configured for several workers. Mosquitto 2.0 does not
save shared subscriptions in its persistence file (``persist__subs_save`` writes only a topic's plain
subscribers): after a broker restart the session is back without its ``$share`` subscription, and what is
published until the worker subscribes again matches no one and is dropped, though acknowledged to its
publisher. A plain subscription is saved with the session: the broker queues for it as soon as it is up.

The broker sends at most ``receive_maximum`` unacknowledged messages: that window is the flow control, so
the local queue never holds more than it (QoS 0 messages beyond it are dropped and counted).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetra.domain.jsonbody import PayloadLimits, decode_payload
from telemetra.domain.timeparse import utcnow
from telemetra.errors import TelemetraError, UnstorableMessage
from telemetra.ingest import metrics
from telemetra.ingest.device_cache import DeviceCache
from telemetra.ingest.pipeline import Pipeline, PipelineClosed
from telemetra.ingest.refusals import RefusalLog
from telemetra.ingest.service import TelemetryService
from telemetra.ingest.sources.paho_asyncio import PahoAsyncio

logger = logging.getLogger(__name__)
__all__ = ["MqttSource", "MqttConfig", "TELEMETRY_TOPIC", "STATE_TOPIC"]

TELEMETRY_TOPIC = "devices/+/telemetry"
STATE_TOPIC = "devices/+/state"
SOURCE = "mqtt"
MQTTS_PORT = 8883
SESSION_EXPIRY_S = 7 * 24 * 3600  # keep unacknowledged messages a week for a worker that is away
# How many batches may be on their way to the writer at once: one committing, the next filling.
CONCURRENT_SUBMISSIONS = 3
RECONNECT_MIN_DELAY_S, RECONNECT_MAX_DELAY_S = 1, 30
RETRY_MIN_DELAY_S, RETRY_MAX_DELAY_S = 0.5, 10.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class MqttConfig:
    url: str
    client_id: str
    shared_group: str | None = None  # $share/<group>/...: only for several workers (see the module docstring)
    receive_maximum: int = 1000
    username: str | None = None
    password: str | None = None
    session_expiry_s: int = SESSION_EXPIRY_S
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def tls(self) -> bool:
        return urlparse(self.url).scheme == "mqtts" or self.ca_file is not None

    @property
    def host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.url)
        return parsed.hostname or "127.0.0.1", parsed.port or (MQTTS_PORT if self.tls else 1883)

    def topic(self, base: str) -> str:
        return f"$share/{self.shared_group}/{base}" if self.shared_group else base


@dataclass(slots=True)
class _Inbound:
    topic: str
    payload: bytes | bytearray  # as paho types it
    mid: int
    qos: int


class MqttSource:
    def __init__(
        self,
        config: MqttConfig,
        telemetry: TelemetryService,
        pipeline: Pipeline,
        devices: DeviceCache,
        *,
        limits: PayloadLimits,
    ) -> None:
        self.config = config
        self._limits = limits
        self._disconnect_properties: Properties | None = None  # sent with the DISCONNECT of stop()
        self._telemetry = telemetry
        self._pipeline = pipeline
        self._devices = devices
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Inbound] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENT_SUBMISSIONS)
        self._tasks: set[asyncio.Task] = set()
        self._consumer: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._refusals = RefusalLog(logger)
        self._client = self._make_client()
        self._driver = PahoAsyncio(self._client, min_delay_s=RECONNECT_MIN_DELAY_S, max_delay_s=RECONNECT_MAX_DELAY_S)

    # -- paho glue (paho's callbacks, run on the event loop by PahoAsyncio) -----------------------
    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=self.config.client_id, protocol=paho.MQTTv5, manual_ack=True
        )
        if self.config.username:
            client.username_pw_set(self.config.username, self.config.password)
        if self.config.tls:
            # The broker's certificate is verified (chain and host name) against the CA file, or the system's
            # CAs without one; a client certificate is presented when the broker asks for one.
            client.tls_set(ca_certs=self.config.ca_file, certfile=self.config.cert_file, keyfile=self.config.key_file)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("mqtt connect refused by %s: %s", self.config.url, reason_code)
            return
        logger.info(
            "mqtt connected to %s as %s (session present: %s), subscribing to %s",
            self.config.url,
            self.config.client_id,
            flags.session_present,
            self.config.topic(TELEMETRY_TOPIC),
        )
        client.subscribe([(self.config.topic(TELEMETRY_TOPIC), 1), (self.config.topic(STATE_TOPIC), 1)])
        self._driver.connected()
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        logger.warning("mqtt disconnected from %s: %s", self.config.url, reason_code)
        self._connected.clear()

    def _on_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        if message.qos == 0 and self._inbox.qsize() >= self.config.receive_maximum:
            metrics.REJECTED.labels(SOURCE, "qos0_overflow").inc()  # QoS 0 has no redelivery to wait for
            return
        self._inbox.put_nowait(_Inbound(message.topic, message.payload, message.mid, message.qos))

    # -- event loop side --------------------------------------------------------------------------
    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect (persistent session), subscribe, and start consuming."""
        self._loop = asyncio.get_running_loop()
        if self.config.shared_group:
            logger.warning(
                "mqtt: share group %s: messages published while the broker restarts and before this "
                "worker is back are lost on Mosquitto 2.0 (README, MQTT)",
                self.config.shared_group,
            )
        host, port = self.config.host_port
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        await self._driver.connect(host, port, 30, clean_start=False, properties=props)
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except BaseException:
            await self._driver.close()  # refused or silent: stop retrying in the background
            raise
        self._consumer = self._loop.create_task(self._consume(), name="mqtt-consumer")

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop taking messages, let submitted batches commit and be acked (within ``timeout_s``; a batch that
        fails meanwhile is not retried), then disconnect. What is not acked comes again in the session."""
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._driver.close(self._disconnect_properties)

    async def _consume(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty() and len(batch) < self._pipeline.max_batch_messages:
                batch.append(self._inbox.get_nowait())
            await self._slots.acquire()
            task = asyncio.get_running_loop().create_task(self._process(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _process(self, batch: list[_Inbound]) -> None:
        try:
            await self._store_batch(batch)
        finally:
            self._slots.release()

    async def _store_batch(self, batch: list[_Inbound]) -> None:
        now = utcnow()
        parsed = [(item, *_parse_topic(item.topic)) for item in batch]
        devices = await self._devices.resolve({device_id for _, device_id, _ in parsed if device_id})
        to_store, to_ack = [], []
        for item, device_id, kind in parsed:
            device = devices.get(device_id) if device_id else None
            if device is None:
                metrics.REJECTED.labels(SOURCE, "unknown_device").inc()
                self._refusals.refused(
                    SOURCE, "unknown_device", device_id, f"no registered device on {item.topic[:200]!r}"
                )
                to_ack.append(item)
                continue
            if kind == "state":
                await self._record_state(device, item.payload)
                to_ack.append(item)
                continue
            # Bad input is acknowledged, counted and dropped for good: redelivery would not make it valid.
            try:
                doc = decode_payload(item.payload, self._limits)
            except TelemetraError as exc:
                metrics.REJECTED.labels(SOURCE, exc.code).inc()
                self._refusals.refused(SOURCE, exc.code, device_id, exc.message)
                to_ack.append(item)
                continue
            try:
                to_store.append((item, self._telemetry.prepare(device, doc, now, source=SOURCE)))
            except TelemetraError as exc:  # prepare counted it
                self._refusals.refused(SOURCE, exc.code, device_id, exc.message)
                to_ack.append(item)
        self._ack(to_ack)
        if to_store:
            await self._store_until_done(to_store)

    async def _store_until_done(self, to_store: list) -> None:
        """Submit, ack what is committed and what the database can never store (the pipeline counted and
        logged those), and retry the rest while the database is down; at stop, leave the rest unacked.

        The broker redelivers unacknowledged messages only on a new session, so giving up on a batch while
        connected would stall its slots of the in-flight window: keep it and retry instead.
        """
        delay = RETRY_MIN_DELAY_S
        while True:
            await self._pipeline.wait_for_room(len(to_store))
            try:
                refused = await self._pipeline.submit([message for _, message in to_store], SOURCE)
            except PipelineClosed:
                return
            except TelemetraError as exc:
                code = exc.code
            else:
                retry = {i for i, error in refused.items() if not isinstance(error, UnstorableMessage)}
                self._ack([item for i, (item, _) in enumerate(to_store) if i not in retry])
                if not retry:
                    return
                code = refused[min(retry)].code
                to_store = [pair for i, pair in enumerate(to_store) if i in retry]
            if self._stopping.is_set():
                return
            logger.warning("mqtt batch of %d not committed (%s); retrying in %.1fs", len(to_store), code, delay)
            try:  # a stop cuts the wait short
                await asyncio.wait_for(self._stopping.wait(), delay)
                return
            except asyncio.TimeoutError:
                delay = min(delay * 2, RETRY_MAX_DELAY_S)

    def _ack(self, items: list[_Inbound]) -> None:
        for item in items:
            if item.qos > 0:
                self._client.ack(item.mid, item.qos)

    async def _record_state(self, device, payload: bytes | bytearray) -> None:
        state = payload.decode("utf-8", "replace").strip().strip('"').lower()[:16]
        if state in ("online", "offline"):
            await self._telemetry.record_connection(device, state)


def _parse_topic(topic: str) -> tuple[str | None, str | None]:
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and parts[2] in ("telemetry", "state") and parts[1]:
        return parts[1], parts[2]
    return None, None

"""MqttCommandTransport: commands on ``devices/{id}/commands`` (QoS 1), acks from ``devices/{id}/commands/ack``.

A command counts as sent when the broker acknowledges the publication (PUBACK); the device confirms
receipt itself with an ack. Acks are read through a shared subscription, so with several processes each
ack is handled once. paho runs its network loop in its own thread; callbacks hop to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlparse

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from telemetra.commands.transport import AckHandler, TransportUnavailable
from telemetra.domain.jsonbody import PayloadLimits, decode_payload
from telemetra.errors import TelemetraError

logger = logging.getLogger(__name__)
MQTTS_PORT = 8883
__all__ = ["MqttCommandTransport", "command_topic", "ACK_TOPIC"]

ACK_TOPIC = "devices/+/commands/ack"
PUBACK_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
# Acks wait here for the loop; past this many unhandled ones new acks are dropped (the device's result is
# lost, the command expires), rather than memory growing while the database is down.
MAX_PENDING_ACKS = 10_000


def command_topic(device_id: str) -> str:
    return f"devices/{device_id}/commands"


class MqttCommandTransport:
    name = "mqtt"

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        limits: PayloadLimits,
        username: str | None = None,
        password: str | None = None,
        shared_group: str | None = "telemetra",
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        self._url = url
        self._limits = limits
        self._tls = urlparse(url).scheme == "mqtts" or ca_file is not None
        self._client_id = client_id
        self._ack_topic = f"$share/{shared_group}/{ACK_TOPIC}" if shared_group else ACK_TOPIC
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if username:
            self._client.username_pw_set(username, password)
        if self._tls:  # the same broker and TLS settings as the telemetry source (TELEMETRA_MQTT_CA_FILE, ...)
            self._client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._pubacks: dict[int, asyncio.Future] = {}
        self._on_ack: AckHandler | None = None
        self._acks: asyncio.Queue[tuple[str, bytes | bytearray]] = asyncio.Queue(MAX_PENDING_ACKS)
        self._worker: asyncio.Task | None = None
        self._stopping = False  # read on paho's thread: a clean stop's disconnection is not a warning

    # -- paho's thread --------------------------------------------------------------------------------
    # paho calls these only once start() has set the loop and connected.
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("mqtt commands: connect refused by %s: %s", self._url, reason_code)
            return
        client.subscribe(self._ack_topic, qos=1)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._stopping:  # our own DISCONNECT at a clean stop: nothing went wrong
            logger.debug("mqtt commands: disconnected from %s", self._url)
        else:
            logger.warning("mqtt commands: disconnected from %s: %s; reconnecting", self._url, reason_code)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._connected.clear)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._resolve_puback, mid, reason_code)

    def _on_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._take_ack, message.topic, message.payload)

    # -- the loop -------------------------------------------------------------------------------------
    def _resolve_puback(self, mid: int, reason_code) -> None:
        future = self._pubacks.pop(mid, None)
        if future is None or future.done():
            return
        if reason_code is not None and getattr(reason_code, "is_failure", False):
            future.set_exception(TransportUnavailable(f"the broker refused the command: {reason_code}"))
        else:
            future.set_result(None)

    def _take_ack(self, topic: str, payload: bytes | bytearray) -> None:
        try:
            self._acks.put_nowait((topic, payload))
        except asyncio.QueueFull:
            logger.warning("mqtt commands: ack on %s dropped, %d waiting", topic, self._acks.qsize())

    async def start(self, on_ack: AckHandler) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_ack = on_ack
        parsed = urlparse(self._url)
        # connect() blocks on the TCP handshake: run it off the loop.
        port = parsed.port or (MQTTS_PORT if self._tls else 1883)
        await asyncio.to_thread(self._client.connect, parsed.hostname or "127.0.0.1", port, 30)
        self._client.loop_start()
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT_S)
        except BaseException:
            # The start fails: paho's thread must not outlive it (it would call into a closed loop).
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
            raise
        self._worker = self._loop.create_task(self._handle_acks(), name="mqtt-command-acks")
        logger.info("mqtt commands: connected to %s as %s", self._url, self._client_id)

    async def stop(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._client.disconnect()
        self._client.loop_stop()

    async def _handle_acks(self) -> None:
        on_ack = self._on_ack
        assert on_ack is not None  # start() sets it before it starts this task
        while True:
            topic, payload = await self._acks.get()
            parts = topic.split("/")
            if len(parts) != 4 or not parts[1]:
                continue
            try:
                doc = decode_payload(payload, self._limits)
            except TelemetraError as exc:
                logger.info("mqtt commands: ack on %s refused: %s", topic, exc.message)
                continue
            try:
                await on_ack(parts[1], doc)
            except Exception:
                logger.exception("mqtt commands: ack on %s not handled", topic)

    async def send(self, device_id: str, payload: dict[str, Any]) -> None:
        await self.publish(command_topic(device_id), payload)

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        if not self._connected.is_set():
            raise TransportUnavailable("The MQTT broker is not reachable; the command stays queued.")
        assert self._loop is not None  # connected: start() has set it
        future = self._loop.create_future()
        info = self._client.publish(topic, orjson.dumps(payload), qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise TransportUnavailable(f"the MQTT publication failed ({paho.error_string(info.rc)})")
        self._pubacks[info.mid] = future
        if info.is_published():  # the PUBACK may have come before we registered the future
            self._pubacks.pop(info.mid, None)
            return
        try:
            await asyncio.wait_for(future, PUBACK_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            self._pubacks.pop(info.mid, None)
            raise TransportUnavailable("The MQTT broker did not acknowledge the command in time.") from exc

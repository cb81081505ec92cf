"""RetiringMqttSource: end the broker session of an MQTT client id that will not come back.

A worker's session outlives the worker (``TELEMETRA_MQTT_SESSION_EXPIRY_S``, a week by default). In a share
group the broker goes on handing such a session its share of the messages, and queues them for it until the
session expires: they wait for a worker that is gone (a StatefulSet scaled down, an id changed). Retiring
the id resumes its session, unsubscribes it (no new share comes to it), stores what the broker kept for it
through the pipeline and acknowledges it, then disconnects with a session expiry of 0: the broker deletes
the session. With ``discard`` the session is ended at once by a clean start, and what it held is dropped.
"""

from __future__ import annotations

import asyncio
import logging

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetra.ingest.sources.mqtt import STATE_TOPIC, TELEMETRY_TOPIC, MqttSource

logger = logging.getLogger(__name__)
__all__ = ["RetiringMqttSource", "retired_topics"]

# The share group every worker joined before the plain subscription became the default.
FORMER_DEFAULT_GROUP = "telemetra"


def retired_topics(shared_group: str | None) -> list[str]:
    """Every subscription a Telemetra session may hold: plain, in the configured group, in the former default."""
    groups = {group for group in (shared_group, FORMER_DEFAULT_GROUP) if group}
    bases = (TELEMETRY_TOPIC, STATE_TOPIC)
    return [*bases, *(f"$share/{group}/{base}" for group in sorted(groups) for base in bases)]


class RetiringMqttSource(MqttSource):
    """The source under another worker's client id: ``start``, ``await drain(quiet_s)``, ``stop``."""

    def __init__(self, *args, discard: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.discard = discard
        self.session_present: bool | None = None
        self.received = self.acknowledged = 0  # QoS 1 messages: those the session must not lose
        self._unsubscribed = asyncio.Event()
        self._progress = asyncio.Event()
        self._client.on_unsubscribe = self._on_unsubscribe

    async def start(self, timeout_s: float = 10.0) -> None:
        if not self.discard:
            await super().start(timeout_s)
            return
        # A clean start ends the old session and drops its queue at once; expiry 0: this one ends with us.
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        host, port = self.config.host_port
        await self._driver.connect(host, port, 30, clean_start=True, properties=props)
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except BaseException:
            await self._driver.close()
            raise

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.error("mqtt connect refused by %s: %s", self.config.url, reason_code)
            return
        if self.session_present is None:
            self.session_present = bool(flags.session_present)
        logger.info(
            "mqtt: retiring client id %s on %s (session present: %s)",
            self.config.client_id,
            self.config.url,
            flags.session_present,
        )
        client.unsubscribe(retired_topics(self.config.shared_group))
        self._driver.connected()
        self._connected.set()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._unsubscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        if message.qos > 0:
            self.received += 1
        self._progress.set()
        super()._on_message(client, userdata, message)

    def _ack(self, items) -> None:
        super()._ack(items)
        self.acknowledged += sum(1 for item in items if item.qos > 0)
        self._progress.set()

    async def drain(self, quiet_s: float) -> int:
        """Return the number of QoS 1 messages stored and acknowledged, once the session is unsubscribed, each
        one received is acknowledged and none came for ``quiet_s``; then ``stop`` deletes the session."""
        if self.discard:
            return 0
        await self._unsubscribed.wait()
        while True:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), quiet_s)
            except asyncio.TimeoutError:
                # The broker sends what it queued as soon as the window has room: silence with nothing
                # unacknowledged means the queue is empty.
                if self.acknowledged >= self.received and self._connected.is_set():
                    break
        props = Properties(PacketTypes.DISCONNECT)
        props.SessionExpiryInterval = 0  # MQTT 5, 3.14.2.2.2: the session ends with this connection
        self._disconnect_properties = props
        return self.acknowledged

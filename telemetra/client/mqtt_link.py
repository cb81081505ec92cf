"""The device client's MQTT side (paho-mqtt, imported only when MQTT is chosen): username = device id, password
= the device key (a login token is not a broker password); telemetry on ``devices/{id}/telemetry`` at QoS 1,
commands from ``devices/{id}/commands``, desired state (retained) from ``devices/{id}/desired``, acks to
``devices/{id}/commands/ack``. TLS with ``mqtts://`` or a CA file."""

from __future__ import annotations

import json
import logging
import queue
from typing import Any
from urllib.parse import urlsplit

from telemetra.client.config import DeviceConfig
from telemetra.client.http_link import AuthenticationFailed, Unreachable

logger = logging.getLogger("telemetra.client")
__all__ = ["MqttLink"]

MAX_INBOUND = 1000


class MqttLink:
    def __init__(self, config: DeviceConfig) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self._paho = paho
        self._config = config
        self._base = f"devices/{config.device_id}"
        self.inbound: queue.Queue[tuple[str, Any]] = queue.Queue(MAX_INBOUND)
        self._refused: str | None = None
        url = urlsplit(config.mqtt_url or "")
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=config.device_id, protocol=paho.MQTTv311)
        client.username_pw_set(config.device_id, config.key)
        if url.scheme == "mqtts" or config.mqtt_ca_file:
            client.tls_set(ca_certs=config.mqtt_ca_file, certfile=config.mqtt_cert_file, keyfile=config.mqtt_key_file)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, int(config.max_backoff_s))
        default_port = 8883 if url.scheme == "mqtts" else 1883
        client.connect_async(url.hostname or "127.0.0.1", url.port or default_port, keepalive=30)
        client.loop_start()
        self._client = client

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        client.subscribe([(f"{self._base}/commands", 1), (f"{self._base}/desired", 1)])

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            doc = json.loads(message.payload)
        except ValueError:
            return
        kind = "desired" if message.topic.endswith("/desired") else "command"
        try:
            self.inbound.put_nowait((kind, doc))
        except queue.Full:
            logger.warning("mqtt: inbound %s dropped (the handler is behind)", kind)

    def _start(self, topic: str, doc: Any) -> Any:
        if self._refused in ("Not authorized", "Bad user name or password"):
            raise AuthenticationFailed(f"the broker refused the device: {self._refused}")
        if not self._client.is_connected():
            raise Unreachable("the broker is not connected")
        return self._client.publish(topic, json.dumps(doc, separators=(",", ":")), qos=1)

    def _wait(self, infos: list[Any]) -> None:
        for info in infos:
            try:
                info.wait_for_publish(self._config.timeout_s)
            except (RuntimeError, ValueError) as exc:  # paho: the connection went meanwhile
                raise Unreachable(f"publication failed: {exc}") from exc
            if not info.is_published():
                raise Unreachable("no PUBACK from the broker in time")

    def _publish(self, topic: str, doc: Any) -> None:
        self._wait([self._start(topic, doc)])

    def send_batch(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # All published, then all confirmed: a failure leaves the whole batch in the outbox, and those the broker
        # did get are sent again and stored once (their msg_ids).
        self._wait([self._start(f"{self._base}/telemetry", m) for m in messages])
        return []

    def ack(self, command_id: str, status: str, result: Any) -> None:
        self._publish(f"{self._base}/commands/ack", {"id": command_id, "status": status, "result": result})

    def report(self, state: dict[str, Any]) -> None:
        self._publish(f"{self._base}/telemetry", {"data": state})

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

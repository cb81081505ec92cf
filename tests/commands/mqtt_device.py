"""A device on a real MQTT broker, as a test sees it: subscribes to its commands, says online, acknowledges."""

from __future__ import annotations

import json
import queue
import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT_S = 10.0


class MqttDevice:
    """A paho client with ``devices/{id}/state`` as its last will; received messages land in ``inbox``."""

    def __init__(self, device_id: str, port: int = 1883, topics: tuple[str, ...] | None = None) -> None:
        self.device_id = device_id
        self.inbox: queue.Queue[tuple[str, dict]] = queue.Queue()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}-{uuid.uuid4().hex[:6]}")
        self._client.will_set(f"devices/{device_id}/state", "offline", qos=1)
        subscribed, connected = threading.Event(), threading.Event()
        self._client.on_connect = lambda *a: connected.set()
        self._client.on_subscribe = lambda *a: subscribed.set()
        # An empty payload clears a retained message: nothing to read.
        self._client.on_message = lambda _c, _u, m: m.payload and self.inbox.put((m.topic, json.loads(m.payload)))
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        assert connected.wait(TIMEOUT_S), "device did not connect"
        for topic in topics or (f"devices/{device_id}/commands",):
            subscribed.clear()
            self._client.subscribe(topic, qos=1)
            assert subscribed.wait(TIMEOUT_S), f"device did not subscribe to {topic}"

    def publish(self, topic: str, payload: str | dict) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self._client.publish(topic, data, qos=1).wait_for_publish(TIMEOUT_S)

    def say(self, state: str) -> None:
        self.publish(f"devices/{self.device_id}/state", state)

    def ack(self, command_id: str, status: str, result: object = None) -> None:
        self.publish(f"devices/{self.device_id}/commands/ack", {"id": command_id, "status": status, "result": result})

    def next(self, timeout_s: float = TIMEOUT_S) -> tuple[str, dict]:
        try:
            return self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"device {self.device_id} received nothing in {timeout_s}s") from None

    def nothing_more(self, wait_s: float = 0.5) -> bool:
        try:
            self.inbox.get(timeout=wait_s)
        except queue.Empty:
            return True
        return False

    def drop(self) -> None:
        """Vanish without a word: the broker publishes the last will."""
        self._client._sock_close()  # no DISCONNECT packet, as when power is cut
        self._client.loop_stop()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

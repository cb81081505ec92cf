"""Transports of the simulator: each sends one device's message and tells whether it was acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx
import orjson

from telemetra.nats_connection import NatsTls, connect_nats, nats_tls_from, url_without_credentials

__all__ = ["HttpSender", "MqttSender", "NatsSender", "Sender"]

MQTTS_PORT = 8883
MQTT_CONNECT_TIMEOUT_S = NATS_CONNECT_TIMEOUT_S = 10.0


class Sender(Protocol):
    async def send(self, device_id: str, device_key: str | None, body: dict[str, Any]) -> bool: ...

    async def close(self) -> None: ...


class HttpSender:
    """Seed 002's route with the device's key, or the gateway route with the tenant key."""

    def __init__(self, url: str, tenant_key: str, connections: int) -> None:
        self._tenant_key = tenant_key
        self._client = httpx.AsyncClient(
            base_url=url,
            timeout=30,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def send(self, device_id: str, device_key: str | None, body: dict[str, Any]) -> bool:
        path = "/api/v1/devices/telemetry" if device_key else f"/api/v1/devices/{device_id}/telemetry"
        resp = await self._client.post(
            path,
            content=orjson.dumps(body),
            headers={"X-API-Key": device_key or self._tenant_key, "Content-Type": "application/json"},
        )
        return resp.status_code == 201

    async def close(self) -> None:
        await self._client.aclose()


class MqttSender:
    """One paho connection publishing QoS 1 with a window of unacknowledged messages (paho's inflight)."""

    def __init__(
        self,
        url: str,
        window: int = 1000,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
    ) -> None:
        """A broker on ``mqtts://``, or given a CA, is spoken to over TLS, its certificate verified against
        ``ca_file`` (the system's CAs without one); ``cert_file``/``key_file``: a client certificate."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        parsed = urlparse(url)
        secure = parsed.scheme == "mqtts" or ca_file is not None
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future] = {}
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="")
        self._client.max_inflight_messages_set(window)
        self._client.max_queued_messages_set(0)
        if username:
            self._client.username_pw_set(username, password)
        if secure:
            self._client.tls_set(ca_certs=ca_file, certfile=cert_file, keyfile=key_file)
        self._client.on_publish = self._on_publish
        self._connack: asyncio.Future = self._loop.create_future()
        self._client.on_connect = self._on_connect
        self._client.connect(parsed.hostname or "127.0.0.1", parsed.port or (MQTTS_PORT if secure else 1883))
        self._client.loop_start()

    @classmethod
    async def connect(cls, url: str, **options: Any) -> MqttSender:
        """Connect and wait for the broker's answer: a refused login (a broker without anonymous access)
        raises at once, instead of leaving every publish waiting for an acknowledgement."""
        sender = cls(url, **options)
        try:
            reason = await asyncio.wait_for(asyncio.shield(sender._connack), MQTT_CONNECT_TIMEOUT_S)
        except asyncio.TimeoutError:
            reason = f"no answer within {MQTT_CONNECT_TIMEOUT_S:.0f}s"
        if reason is not None:
            await sender.close()
            where = url_without_credentials(url)
            raise ConnectionError(f"the MQTT broker at {where} refused the connection: {reason}")
        return sender

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        outcome = str(reason_code) if reason_code.is_failure else None

        def settle() -> None:
            if not self._connack.done():
                self._connack.set_result(outcome)

        self._loop.call_soon_threadsafe(settle)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # paho's thread, holding paho's own locks: hand over to the loop and take no lock of ours here
        # (publish() on the loop thread would wait for paho's lock while we wait for ours).
        self._loop.call_soon_threadsafe(self._acked, mid, reason_code.is_failure)

    def _acked(self, mid: int, failed: bool) -> None:
        # Runs on the loop after send() registered the mid: send() does so before it yields.
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(not failed)

    async def send(self, device_id: str, device_key: str | None, body: dict[str, Any]) -> bool:
        info = self._client.publish(f"devices/{device_id}/telemetry", orjson.dumps(body), qos=1)
        if info.rc != 0:
            return False
        future = self._loop.create_future()
        self._pending[info.mid] = future
        return await future

    async def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class NatsSender:
    """JetStream publish (the stream's ack means stored) to ``telemetry.<device_id>``."""

    def __init__(self, nc: Any) -> None:
        self._nc = nc
        self._js = nc.jetstream()

    @classmethod
    async def connect(cls, url: str, tls: NatsTls | None = None) -> NatsSender:
        """Connect as the server does (TLS when ``tls`` is given or the URL is ``tls://``), but give up after
        ``NATS_CONNECT_TIMEOUT_S``: a simulator waits for nobody."""
        tls = tls or nats_tls_from(url, None, None, None)
        try:
            return cls(await asyncio.wait_for(connect_nats(url, tls), NATS_CONNECT_TIMEOUT_S))
        except asyncio.TimeoutError:
            where = url_without_credentials(url)
            raise ConnectionError(f"no NATS at {where} within {NATS_CONNECT_TIMEOUT_S:.0f}s") from None

    async def send(self, device_id: str, device_key: str | None, body: dict[str, Any]) -> bool:
        await self._js.publish(f"telemetry.{device_id}", orjson.dumps(body))
        return True

    async def close(self) -> None:
        await self._nc.close()

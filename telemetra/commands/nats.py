"""NatsCommandTransport: commands on ``commands.{id}``, acks from ``commands.{id}.ack``.

Core NATS, not JetStream: a command counts as sent once the server has taken it (a flush round trip);
a device that was not subscribed gets it again when it comes back, as every open command is resent then.
Acks are read in a queue group, so with several processes each ack is handled once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import orjson

from telemetra.commands.transport import AckHandler, TransportUnavailable
from telemetra.domain.jsonbody import PayloadLimits, decode_payload
from telemetra.errors import TelemetraError
from telemetra.nats_connection import NatsTls, connect_nats, url_without_credentials

logger = logging.getLogger(__name__)
__all__ = ["NatsCommandTransport", "command_subject"]

ACK_SUBJECT = "commands.*.ack"
QUEUE_GROUP = "telemetra-commands"
FLUSH_TIMEOUT_S = 5  # whole seconds: nats-py types flush()'s timeout as an int


def command_subject(device_id: str) -> str:
    return f"commands.{device_id}"


class NatsCommandTransport:
    name = "nats"

    def __init__(self, url: str, tls: NatsTls | None = None, *, limits: PayloadLimits) -> None:
        self._url = url
        self._limits = limits
        self._tls = tls
        self._nc: nats.NATS | None = None
        self._on_ack: AckHandler | None = None

    async def start(self, on_ack: AckHandler) -> None:
        self._on_ack = on_ack
        self._nc = nc = await connect_nats(self._url, self._tls)
        # The handler runs one message at a time: the client's pending limits bound what waits for it.
        await nc.subscribe(ACK_SUBJECT, queue=QUEUE_GROUP, cb=self._take_ack)
        logger.info("nats commands: connected to %s", url_without_credentials(self._url))

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def _take_ack(self, msg) -> None:
        parts = msg.subject.split(".")
        if len(parts) != 3 or not parts[1]:
            return
        assert self._on_ack is not None  # start() sets it before it subscribes
        try:
            doc = decode_payload(msg.data, self._limits)
            await self._on_ack(parts[1], doc)
        except TelemetraError as exc:
            logger.info("nats commands: ack on %s refused: %s", msg.subject, exc.message)
        except Exception:
            logger.exception("nats commands: ack on %s not handled", msg.subject)

    async def send(self, device_id: str, payload: dict[str, Any]) -> None:
        await self.publish(command_subject(device_id), payload)

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise TransportUnavailable("The NATS server is not reachable; the command stays queued.")
        try:
            await self._nc.publish(topic.replace("/", "."), orjson.dumps(payload))
            await self._nc.flush(timeout=FLUSH_TIMEOUT_S)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise TransportUnavailable(f"NATS did not take the command: {exc}") from exc

"""CommandService: record commands, send them to devices that are online, take their acks, expire them.

Every state lives in the database, so a restart loses no command: what was queued or sent and not yet
confirmed goes (again) to the device when it next comes online. Delivery is at least once; a device keeps
each command id once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any, Callable

from telemetra.commands.transport import CommandTransport, TransportUnavailable
from telemetra.domain.commands import (
    ACK_STATUSES,
    FINAL_STATUSES,
    GATEWAY_TRANSPORT,
    Command,
    NewCommand,
    command_payload,
)
from telemetra.domain.jsonbody import refuse_nul
from telemetra.domain.models import Device
from telemetra.domain.mosquitto_auth import DEVICE_PLACEHOLDER
from telemetra.domain.online import is_online
from telemetra.domain.timeparse import utcnow
from telemetra.errors import CommandFinished, CommandNotFound, ValidationFailed
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["CommandService", "parse_ack"]

# Commands of one device go out in order under one lock; devices share a fixed set of locks (bounded
# memory whatever the fleet), at the price of two devices now and then waiting for each other.
LOCK_STRIPES = 64
MAX_PENDING_PER_DISPATCH = 100
MAX_RESULT_BYTES = 16_384


def parse_ack(doc: Any) -> tuple[str, str, Any]:
    """Return (command id, new state, result) of an ack document; ValidationFailed when it is not one."""
    if not isinstance(doc, dict):
        raise ValidationFailed('an ack is a JSON object {"id", "status", "result"}', code="invalid_ack")
    command_id, status = doc.get("id"), doc.get("status")
    if not isinstance(command_id, str) or not command_id:
        raise ValidationFailed("the ack needs the command's 'id'", code="invalid_ack")
    if status not in ACK_STATUSES:
        raise ValidationFailed(f"'status' must be one of {', '.join(ACK_STATUSES)}", code="invalid_ack")
    result = doc.get("result")
    if len(repr(result)) > MAX_RESULT_BYTES:
        raise ValidationFailed(f"'result' is larger than {MAX_RESULT_BYTES} bytes", code="invalid_ack")
    refuse_nul({"result": result})  # an ack from a broker is read by no route: PostgreSQL's jsonb refuses a NUL
    return command_id, ACK_STATUSES[status], result


def _named(command_id: str) -> bool:
    # Ids are made here (uuid4 hex); one with a NUL names no command, and would fail PostgreSQL's lookup.
    return "\x00" not in command_id


class CommandService:
    def __init__(
        self,
        store: Store,
        transport: CommandTransport | None,
        *,
        default_offline_after_s: int,
        send_topic: str = "send_command",
        expiry_interval_s: float = 5.0,
    ) -> None:
        self._store = store
        self.transport = transport
        self._default_offline_after_s = default_offline_after_s
        self._send_topic = send_topic
        self._expiry_interval_s = expiry_interval_s
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._listeners: list[Callable[[Command], None]] = []

    def on_change(self, listener: Callable[[Command], None]) -> None:
        """Call ``listener`` (it must not wait) with each command created or moved to a new state, once
        committed. Expiry, a set-based sweep, is not announced."""
        self._listeners.append(listener)

    def _announce(self, command: Command | None) -> Command | None:
        if command is not None:
            for listener in self._listeners:
                try:
                    listener(command)
                except Exception:  # the change is committed; a listener's fault must not fail the caller
                    logger.exception("command listener failed for command %s", command.id)
        return command

    async def _transition(self, command_id: str, status: str, **fields: Any) -> Command | None:
        return self._announce(await self._store.commands.transition(command_id, status, utcnow(), **fields))

    async def start(self) -> None:
        if self.transport is not None:
            await self.transport.start(self.handle_ack)

    async def stop(self) -> None:
        if self.transport is not None:
            await self.transport.stop()

    # -- tenant side ----------------------------------------------------------------------------------
    async def create(self, device: Device, name: str, params: dict[str, Any], ttl_s: float) -> Command:
        """Record a command; send it at once when the device is online and a transport is configured."""
        now = utcnow()
        command = await self._store.commands.create_command(
            NewCommand(
                id=uuid.uuid4().hex,
                tenant_id=device.tenant_id,
                device_pk=device.pk,
                name=name,
                params=params,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
            )
        )
        logger.info("command %s queued for device %s: %s", command.id, device.id, name)
        self._announce(command)
        if self.transport is not None and is_online(device, now, self._default_offline_after_s):
            await self.dispatch(device)
            command = await self._store.commands.get_command(command.id) or command
        return command

    async def get(self, device: Device, command_id: str) -> Command:
        command = (
            await self._store.commands.get_command(command_id, device_pk=device.pk) if _named(command_id) else None
        )
        if command is None:
            raise CommandNotFound()
        return command

    def send_topic_of(self, device_id: str) -> str:
        """Seed 001's command topic for ``device_id``: TELEMETRA_SEND_COMMAND_TOPIC, its ``{device_id}`` filled."""
        return self._send_topic.replace(DEVICE_PLACEHOLDER, device_id)

    async def send_switch(self, device: Device, switch: bool) -> Command:
        """Seed 001's /send: publish an on/off order on the gateway topic, and keep it as a command."""
        if self.transport is None:
            raise TransportUnavailable("No MQTT or NATS broker is configured to carry commands.")
        now = utcnow()
        command = await self._store.commands.create_command(
            NewCommand(
                id=uuid.uuid4().hex,
                tenant_id=device.tenant_id,
                device_pk=device.pk,
                name="switch",
                params={"switch": switch},
                created_at=now,
                expires_at=now + timedelta(hours=1),
                transport=GATEWAY_TRANSPORT,
            )
        )
        try:
            # Both names of the device: the seed's README says device_id, its code sent devId.
            await self.transport.publish(
                self.send_topic_of(device.id), {"device_id": device.id, "devId": device.id, "switch": switch}
            )
        except TransportUnavailable as exc:
            await self._transition(command.id, "failed", result={"error": exc.message})
            raise
        logger.info(
            "command %s sent on %s for device %s: switch=%s",
            command.id,
            self.send_topic_of(device.id),
            device.id,
            switch,
        )
        return await self._transition(command.id, "sent") or command

    # -- sending --------------------------------------------------------------------------------------
    async def dispatch(self, device: Device) -> int:
        """Send the device's open commands in order; return how many the broker accepted."""
        if self.transport is None:
            return 0
        sent = 0
        async with self._locks[device.pk % LOCK_STRIPES]:
            for command in await self._store.commands.pending_commands(device.pk, utcnow(), MAX_PENDING_PER_DISPATCH):
                try:
                    await self.transport.send(device.id, command_payload(command))
                except TransportUnavailable as exc:
                    logger.warning(
                        "command %s for device %s stays %s: %s", command.id, device.id, command.status, exc.message
                    )
                    break  # the rest must not overtake it
                await self._transition(command.id, "sent", transport=self.transport.name)
                sent += 1
        if sent:
            logger.info("commands sent to device %s: %d (%s)", device.id, sent, self.transport.name)
        return sent

    async def on_connection(self, device: Device, state: str, previous: str | None) -> None:
        """A device came back online: send what waited for it."""
        if state == "online":
            await self.dispatch(device)

    async def fetch_for_heartbeat(self, device: Device) -> list[dict[str, Any]]:
        """The device's open commands, handed over in an HTTP answer (they count as sent)."""
        payloads = []
        async with self._locks[device.pk % LOCK_STRIPES]:
            for command in await self._store.commands.pending_commands(device.pk, utcnow(), MAX_PENDING_PER_DISPATCH):
                await self._transition(command.id, "sent", transport="http")
                payloads.append(command_payload(command))
        return payloads

    # -- acks -----------------------------------------------------------------------------------------
    async def ack(self, device: Device, doc: Any, command_id: str | None = None) -> Command:
        """Apply a device's ack; CommandNotFound for another device's command, CommandFinished once final."""
        if isinstance(doc, dict) and command_id is not None:
            doc = {**doc, "id": command_id}
        cid, status, result = parse_ack(doc)
        if not _named(cid):
            raise CommandNotFound()
        updated = await self._transition(cid, status, result=result, device_pk=device.pk)
        if updated is not None:
            logger.info("command %s of device %s: %s", cid, device.id, status)
            return updated
        current = await self._store.commands.get_command(cid, device_pk=device.pk)
        if current is None:
            raise CommandNotFound()
        if current.status in FINAL_STATUSES:
            raise CommandFinished(f"The command is already {current.status}.")
        return current  # a repeated 'received': nothing to change

    async def handle_ack(self, device_id: str, doc: Any) -> None:
        """An ack from a broker: the topic names the device, which must own the command."""
        device = await self._store.get_device(device_id)
        if device is None:
            logger.info("command ack from unknown device %s dropped", device_id[:128])
            return
        try:
            await self.ack(device, doc)
        except (ValidationFailed, CommandNotFound, CommandFinished) as exc:
            logger.info("command ack from device %s refused: %s", device.id, exc.message)

    # -- expiry ---------------------------------------------------------------------------------------
    async def run_expiry(self) -> None:
        """Mark commands past their TTL as expired, every few seconds (every process may: it is idempotent)."""
        while True:
            await asyncio.sleep(self._expiry_interval_s)
            try:
                count = await self._store.commands.expire_commands(utcnow())
                if count:
                    logger.info("commands expired: %d", count)
            except Exception:
                logger.warning("command expiry failed; will retry", exc_info=True)

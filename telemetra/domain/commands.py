"""A command and its lifecycle: plain data and the transitions allowed between states.

queued -> sent (a broker accepted it, or an HTTP device fetched it) -> delivered (the device confirmed
receipt) -> succeeded | failed (the device's result); queued or sent -> expired once its TTL is over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telemetra.domain.timeparse import isoformat

__all__ = [
    "Command",
    "NewCommand",
    "STATUSES",
    "OPEN_STATUSES",
    "FINAL_STATUSES",
    "ALLOWED_FROM",
    "ACK_STATUSES",
    "GATEWAY_TRANSPORT",
    "command_payload",
    "command_public",
]

STATUSES = ("queued", "sent", "delivered", "succeeded", "failed", "expired")
# Still to be (re)sent to the device: a command the broker took while the device was away may never
# have reached it, so it goes again when the device comes back (the device keeps each id once).
OPEN_STATUSES = ("queued", "sent")
FINAL_STATUSES = ("succeeded", "failed", "expired")
# Seed 001's /send publishes on a shared gateway topic, whose payload carries no command id: such a command
# is never resent on the device's own topic nor acknowledged.
GATEWAY_TRANSPORT = "send_command"
# Where each state may be reached from; a late or repeated ack never moves a command backwards.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "sent": ("queued", "sent"),
    "delivered": ("queued", "sent"),
    "succeeded": ("queued", "sent", "delivered"),
    "failed": ("queued", "sent", "delivered"),
    "expired": OPEN_STATUSES,
}
# What a device may answer in an ack, and the state each answer leads to.
ACK_STATUSES = {"received": "delivered", "succeeded": "succeeded", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class NewCommand:
    id: str
    tenant_id: int
    device_pk: int
    name: str
    params: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    status: str = "queued"
    transport: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    seq: int
    id: str
    tenant_id: int
    device_pk: int
    device_id: str
    name: str
    params: dict[str, Any]
    status: str
    transport: str | None
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    completed_at: datetime | None = None
    result: Any = None


def command_payload(command: Command) -> dict[str, Any]:
    """What the device receives."""
    return {
        "id": command.id,
        "name": command.name,
        "params": command.params,
        "expires_at": isoformat(command.expires_at),
    }


def command_public(command: Command) -> dict[str, Any]:
    """What the tenant sees of a command."""
    return {
        "id": command.id,
        "device_id": command.device_id,
        "name": command.name,
        "params": command.params,
        "status": command.status,
        "transport": command.transport,
        "created_at": isoformat(command.created_at),
        "expires_at": isoformat(command.expires_at),
        "sent_at": isoformat(command.sent_at),
        "delivered_at": isoformat(command.delivered_at),
        "completed_at": isoformat(command.completed_at),
        "result": command.result,
    }

"""What a command transport does: deliver a payload to a device, and publish on a named topic."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol

__all__ = ["CommandTransport", "AckHandler", "TransportUnavailable"]

from telemetra.errors import ServiceUnavailable

# Called with (device id, the ack document) for every ack a device sends.
AckHandler = Callable[[str, Any], Awaitable[None]]


class TransportUnavailable(ServiceUnavailable):
    code = "transport_unavailable"
    default_message = "No broker is configured or reachable to carry commands; retry later."


class CommandTransport(Protocol):
    name: str

    async def start(self, on_ack: AckHandler) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, device_id: str, payload: dict[str, Any]) -> None:
        """Return once the broker has accepted the command for the device; TransportUnavailable if not."""

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        """Publish on a topic (or subject) of our choosing, e.g. seed 001's ``send_command``."""

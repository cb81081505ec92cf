"""uvicorn's HTTP protocol with a deadline for a request's headers and a cap on open connections.

uvicorn times out only an idle kept-alive connection: a client that opens a connection and sends its
headers a byte at a time (slowloris) holds it, and a file descriptor, for as long as it likes, and a few
thousand such clients starve a server. Here every request must have sent its whole header block within
``header_timeout_s`` of its first byte (or of the connection's opening), else the connection is closed;
and a connection opened past ``max_connections`` is closed at once, before it can cost anything more.
A slow *body* is the app's affair: ``read_json`` bounds its size, and its time is that of any request.

uvicorn writes a response's head and its body with two calls, and each leaves at once (TCP_NODELAY): two
system calls and two TCP segments for every answer, where one does. The transport handed to uvicorn
(``_OneWriteResponses``) holds a head back until the body's first bytes and sends both together; a head
whose body does not follow in the same step of the event loop (a stream's) leaves at the next step.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _FastestProtocol
except ImportError:  # httptools is optional in uvicorn; h11 is always there
    _FastestProtocol = H11Protocol  # type: ignore[misc,assignment]

__all__ = ["guarded_protocol"]

logger = logging.getLogger(__name__)


class _OneWriteResponses:
    """A transport that sends a response's head together with what is written next (see the module's doc);
    everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
            self._transport.write(data)
        elif data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n"):
            # Bytes are never reordered: anything written while the head waits goes out after it.
            self._head = data
            self._loop.call_soon(self._send_head)
        else:
            self._transport.write(data)

    def _send_head(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self._send_head()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Guarded:
    """Mixin over a uvicorn HTTP protocol class; the class attributes are set by ``guarded_protocol``."""

    header_timeout_s: float
    max_connections: int

    # Set by the protocol classes this is mixed into.
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    _header_timer: asyncio.TimerHandle | None = None
    _armed_cycle: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        one_write = _OneWriteResponses(transport, self.loop)
        super().connection_made(one_write)  # type: ignore[misc]  # a mixin: the uvicorn protocol after it has it
        if len(self.connections) > self.max_connections:
            # Refused before a byte is read: under a flood of idle connections this is the cheapest answer.
            _note_refusal()
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)  # type: ignore[misc]
        # uvicorn starts a new cycle once the request's headers are complete: the deadline is met.
        if self._header_timer is not None and self.cycle is not self._armed_cycle:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._armed_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is self._armed_cycle:
            self.transport.close()


_refusals_logged = 0


def _note_refusal() -> None:
    # One line for the first refusal and then one per thousand: a flood must not become a flood of logs.
    global _refusals_logged
    if _refusals_logged % 1000 == 0:
        logger.warning(
            "connection refused: the server holds its maximum of open connections "
            "(TELEMETRA_HTTP_MAX_CONNECTIONS); %d refused so far",
            _refusals_logged + 1,
        )
    _refusals_logged += 1


def guarded_protocol(*, header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """The fastest available uvicorn HTTP protocol, with a header deadline and a connection cap."""
    return type(
        "GuardedHttpProtocol",
        (_Guarded, _FastestProtocol),
        {"header_timeout_s": header_timeout_s, "max_connections": max_connections},
    )

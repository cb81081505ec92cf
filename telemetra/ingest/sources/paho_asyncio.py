"""PahoAsyncio: a paho-mqtt client's network I/O driven by the asyncio event loop instead of paho's thread.

With ``loop_start()`` paho reads the socket in a thread of its own while the event loop validates and
commits in another. Each ``recv`` releases the GIL, so at thousands of messages a second the two threads
hand it back and forth several times a message, and each waits for the other's switch interval. Here
paho's "external event loop" interface (``loop_read``, ``loop_write``, ``loop_misc`` and the socket
callbacks) runs on the event loop itself: one thread, and paho's callbacks run where the source lives.

paho reconnects by itself only in its own loop; here a task does it, with the same backoff. Opening a
socket (TCP connect, TLS handshake) blocks, so ``connect`` and ``reconnect`` run in a worker thread; the
socket callbacks they fire there hop to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import select
import threading
from typing import Any

import paho.mqtt.client as paho

logger = logging.getLogger(__name__)
__all__ = ["PahoAsyncio"]

# Packets read per wake-up of the loop at most: a burst is read without a trip through the selector for
# each message, and other tasks still get their turn.
MAX_PACKETS_PER_WAKEUP = 200
MISC_INTERVAL_S = 1.0  # keepalive pings and their timeout, as paho's own loop checks them
CLOSE_TIMEOUT_S = 5.0


class PahoAsyncio:
    """Drive ``client`` from the running event loop. ``await connect(...)`` instead of ``connect()`` and
    ``loop_start()``; ``await close()`` instead of ``disconnect()`` and ``loop_stop()``."""

    def __init__(self, client: paho.Client, *, min_delay_s: float = 1.0, max_delay_s: float = 30.0) -> None:
        self._client = client
        self._min_delay_s, self._max_delay_s = min_delay_s, max_delay_s
        self._delay_s = min_delay_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sock: Any = None
        self._poll: select.poll | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self._misc: asyncio.Task | None = None
        self._reconnecting: asyncio.Task | None = None
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    async def connect(self, host: str, port: int, keepalive: int, **kwargs: Any) -> None:
        """Open the connection (CONNECT is sent, CONNACK comes to ``on_connect``); raises if the socket cannot
        be opened. Once open, a lost connection is reopened until ``close``."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await asyncio.to_thread(self._client.connect, host, port, keepalive, **kwargs)
        self._misc = self._loop.create_task(self._keep_alive(), name="mqtt-keepalive")

    def connected(self) -> None:
        """Tell the driver a CONNACK accepted the connection: the next reconnection starts at the shortest
        delay again (a broker that accepts the socket and refuses the login is retried ever more slowly)."""
        self._delay_s = self._min_delay_s

    async def close(self, properties: Any = None) -> None:
        """Send DISCONNECT (with ``properties``, MQTT 5), wait until the socket is closed, stop reconnecting."""
        self._closing = True
        for task in (self._reconnecting, self._misc):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._sock is not None:
            self._closed.clear()
            self._client.disconnect(properties=properties)
            try:
                await asyncio.wait_for(self._closed.wait(), CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                logger.warning("mqtt: no clean disconnect within %.0fs; closing the socket", CLOSE_TIMEOUT_S)
                self._forget_socket(self._sock)

    # -- paho's socket callbacks (on the loop, or in the connecting thread) -----------------------
    def _on_loop(self, callback, *args) -> None:
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:
            # paho opens and closes sockets only inside connect() and after it, which set the loop first.
            assert self._loop is not None
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_socket_open(self, client, userdata, sock) -> None:
        self._on_loop(self._watch, sock)

    def _on_socket_close(self, client, userdata, sock) -> None:
        # paho closes the socket right after this callback: on the loop, it is forgotten before that.
        self._on_loop(self._forget_socket, sock)

    def _on_register_write(self, client, userdata, sock) -> None:
        self._on_loop(self._want_write, sock)

    def _on_unregister_write(self, client, userdata, sock) -> None:
        assert self._loop is not None  # paho writes only on a socket connect() opened, after setting the loop
        self._on_loop(self._loop.remove_writer, sock)

    # -- event loop side --------------------------------------------------------------------------
    def _watch(self, sock) -> None:
        # Closed again before the loop got to it, or opened by a reconnection that close() overtook (that
        # socket is left to paho; the broker drops it after the keepalive).
        if sock.fileno() < 0 or self._closing:
            return
        # The methods from here on run on the loop, so only once connect() has set it.
        assert self._loop is not None
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._loop.add_reader(sock, self._readable)

    def _want_write(self, sock) -> None:
        assert self._loop is not None  # on the loop: connect() set it
        if sock is self._sock:
            self._loop.add_writer(sock, self._client.loop_write)

    def _forget_socket(self, sock) -> None:
        if sock is not self._sock:
            return
        assert self._loop is not None  # a socket is watched only once connect() set the loop
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = self._poll = None
        self._closed.set()
        if not self._closing:
            self._reconnecting = self._loop.create_task(self._reconnect(), name="mqtt-reconnect")

    def _readable(self) -> None:
        client, sock, poll = self._client, self._sock, self._poll
        if sock is None:
            return
        # _watch sets the socket, its poll and the loop together; _forget_socket clears the first two together.
        assert poll is not None and self._loop is not None
        for _ in range(MAX_PACKETS_PER_WAKEUP):
            if client.loop_read() != paho.MQTT_ERR_SUCCESS or self._sock is not sock:
                return  # the connection was lost: paho closed it, and _forget_socket took over
            # loop_read reads one packet, or part of one: read on while bytes are waiting (in TLS's buffer
            # or the socket's), else the selector wakes us when more come.
            if not (getattr(sock, "pending", None) and sock.pending()) and not poll.poll(0):
                return
        # At the cap with bytes still waiting. Bytes already in TLS's buffer would not wake the selector.
        self._loop.call_soon(self._readable)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(MISC_INTERVAL_S)
            if self._sock is not None:
                self._client.loop_misc()

    async def _reconnect(self) -> None:
        while not self._closing:
            logger.info("mqtt: reconnecting in %.0fs", self._delay_s)
            await asyncio.sleep(self._delay_s)
            self._delay_s = min(self._delay_s * 2, self._max_delay_s)
            try:
                await asyncio.to_thread(self._client.reconnect)
                return
            except OSError as exc:  # refused, unreachable, timed out, TLS failure
                logger.warning("mqtt: reconnection failed: %s", exc)

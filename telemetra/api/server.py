"""Run the app under uvicorn, ending live streams as soon as a shutdown signal arrives.

At SIGTERM uvicorn stops accepting, then waits for open responses before the app's shutdown runs; a
live stream never ends by itself, so it is ended here, at the signal. ``GRACEFUL_SHUTDOWN_S`` bounds the
wait for anything else still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any, Callable

import uvicorn
from fastapi import FastAPI

__all__ = ["run_server", "bind_listener", "PortBusy", "GRACEFUL_SHUTDOWN_S"]

GRACEFUL_SHUTDOWN_S = 5


class PortBusy(Exception):
    """The address to listen on cannot be bound (taken by another process, or not ours to take)."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, bound before anything else starts.

    `serve` binds first so that a second run on a busy port stops before it touches the database, and
    says so in one line.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise PortBusy(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}") from exc


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._app = app
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self._on_ready is not None and self.started and not self.should_exit:
            self._on_ready()  # the app has started and the port accepts: now the URL may be announced

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        services = getattr(self._app.state, "services", None)
        if services is not None:
            # A signal handler runs between two steps of the loop: hand the work to the loop itself.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(services.live.hub.close)


def run_server(
    app: FastAPI,
    *,
    host: str,
    port: int,
    access_log: bool,
    sockets: list[socket.socket] | None = None,
    on_ready: Callable[[], None] | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` (on ``sockets`` when already bound); ``on_ready`` runs once it accepts connections;
    ``options`` go to uvicorn (TLS files, header limits, ...)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,
    )
    _Server(config, app, on_ready).run(sockets=sockets)

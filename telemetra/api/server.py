"""Run the app under uvicorn, ending live streams as soon as a shutdown signal arrives.

At SIGTERM uvicorn stops accepting, then waits for open responses before the app's shutdown runs; a
live stream never ends by itself, so it is ended here, at the signal. ``GRACEFUL_SHUTDOWN_S`` bounds the
wait for anything else still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from fastapi import FastAPI

__all__ = ["run_server", "GRACEFUL_SHUTDOWN_S"]

GRACEFUL_SHUTDOWN_S = 5


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        services = getattr(self._app.state, "services", None)
        if services is not None:
            # A signal handler runs between two steps of the loop: hand the work to the loop itself.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(services.live.hub.close)


def run_server(app: FastAPI, *, host: str, port: int, access_log: bool, **options: Any) -> None:
    """Serve ``app``; ``options`` go to uvicorn (TLS files, header limits, ...)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,
    )
    _Server(config, app).run()

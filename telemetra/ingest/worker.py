"""`telemetra worker`: the pipeline and broker sources of one process, without HTTP."""

from __future__ import annotations

import asyncio
import logging
import signal

from telemetra.ingest.runner import build_sources
from telemetra.ingest.sealer import RollupSealer
from telemetra.settings import Settings
from telemetra.store import store_from_settings

logger = logging.getLogger(__name__)
__all__ = ["run_worker"]


async def run_worker(settings: Settings, source_names: list[str]) -> None:
    """Run until SIGTERM or SIGINT; then stop taking messages, commit and ack what is in flight, exit."""
    # The one wiring place, shared with the HTTP app.
    from telemetra.api.app import build_services, stop_ingest, stop_services

    store = store_from_settings(settings)
    await store.open()
    await store.migrate()
    services = build_services(settings, store)
    sources = build_sources(settings, services, source_names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    services.activity.start()
    await services.alerts.engine.start()  # rules for its share of the devices, and the no-data timer
    services.pipeline.start()
    try:
        await services.commands.start()  # a device reported online here gets its queued commands from here
        await services.live.start()  # with Redis, stream clients of every `serve` see what this worker commits
        for source in sources:
            await source.start()
        sealer = asyncio.get_running_loop().create_task(
            RollupSealer(store, lag_s=settings.rollup_seal_lag_s).run(), name="rollup-sealer")
        logger.info("worker ready: sources %s, database %s", ",".join(source_names), store.backend)
        await stop.wait()
        logger.info("worker stopping: finishing what is in flight")
        sealer.cancel()
        await asyncio.gather(sealer, return_exceptions=True)
    finally:
        await stop_ingest(services, sources)
        await stop_services(services)
        await store.close()
        logger.info("worker stopped")

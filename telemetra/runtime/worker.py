"""`telemetra worker`: the pipeline and broker sources of one process, without HTTP; and the short run of
`telemetra mqtt retire-client`, which stores what a departed worker's MQTT session holds, then ends it."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, replace

from telemetra.ingest.runner import Source, build_sources
from telemetra.runtime.processes import ingest_runtime, pull_sources
from telemetra.runtime.services import Services
from telemetra.settings import Settings

logger = logging.getLogger(__name__)
__all__ = ["run_worker", "run_puller", "retire_mqtt_client", "RetiredClient"]


@dataclass(frozen=True, slots=True)
class RetiredClient:
    client_id: str
    session_present: bool | None  # None: not known (a discard starts clean)
    stored: int  # QoS 1 messages it held, stored and acknowledged
    discarded: bool
    retired: bool  # False: interrupted, the session is kept


async def run_worker(settings: Settings, source_names: list[str]) -> None:
    """Run until SIGTERM or SIGINT; then stop taking messages, commit and ack what is in flight, exit."""
    stop = _stop_on_signals()

    def make_sources(services: Services) -> list[Source]:
        return build_sources(
            settings, source_names, telemetry=services.telemetry, pipeline=services.pipeline, store=services.store
        )

    try:
        async with ingest_runtime(settings, make_sources, sealer=True) as runtime:
            logger.info("worker ready: sources %s, database %s", ",".join(source_names), runtime.store.backend)
            await stop.wait()
            logger.info("worker stopping: finishing what is in flight")
    finally:
        logger.info("worker stopped")


async def run_puller(settings: Settings, url: str) -> None:
    """`telemetra pull`: poll ``url`` into the store until SIGTERM or SIGINT (the pipeline, no HTTP)."""
    stop = _stop_on_signals()
    async with ingest_runtime(settings, lambda services: pull_sources(settings, services, url), sealer=True):
        await stop.wait()
        logger.info("pull stopping")


async def retire_mqtt_client(
    settings: Settings, client_id: str, *, quiet_s: float = 2.0, discard: bool = False
) -> RetiredClient:
    """Resume ``client_id``'s session, store what it holds, then end it (``discard``: end it at once).

    Only for an id no running worker uses: the broker hands a session to the last client that connects."""
    from telemetra.ingest.device_cache import DeviceCache
    from telemetra.ingest.runner import mqtt_config, payload_limits
    from telemetra.ingest.sources.mqtt_retire import RetiringMqttSource

    if not settings.mqtt_url:
        raise ValueError("retiring an MQTT client needs TELEMETRA_MQTT_URL (or --mqtt)")
    sources: list[RetiringMqttSource] = []

    def make(services: Services) -> list[Source]:
        config = replace(mqtt_config(settings), client_id=client_id)
        sources.append(
            RetiringMqttSource(
                config,
                services.telemetry,
                services.pipeline,
                DeviceCache(services.store),
                limits=payload_limits(settings),
                discard=discard,
            )
        )
        return list(sources)

    stop = _stop_on_signals()
    async with ingest_runtime(settings, make):
        (source,) = sources
        drained = asyncio.ensure_future(source.drain(quiet_s))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([drained, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in (drained, stopped):
            task.cancel()
        await asyncio.gather(drained, stopped, return_exceptions=True)
        # Interrupted before the end: stop() leaves the session (and what it still holds) to the broker.
        retired = drained.done() and not drained.cancelled()
    session = None if discard else source.session_present
    if retired:
        logger.info(
            "mqtt client id %s retired: %d messages stored%s",
            client_id,
            source.acknowledged,
            ", its queue discarded" if discard else "",
        )
    return RetiredClient(client_id, session, source.acknowledged, discard, retired)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop

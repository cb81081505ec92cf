"""The parts each kind of process runs, in the one order they start in (and stop in reverse).

    store -> rate limiter -> activity -> commands -> live feed -> [serve: watches, deliveries, periodic tasks]
          -> rule engine -> pipeline -> sources (brokers, the puller) -> [serve: demo devices; worker: rollup sealer]

Stopped from the right: the sources stop taking messages, the pipeline commits what is queued, the rule engine
evaluates it (these three within ``TELEMETRA_INGEST_STOP_TIMEOUT_S``, the order that loses nothing); then the
live feed and the command transport, which the last commits may still use, then the activity flush (the stops
before it may still note activity), the rate limiter's connections, and the store.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable

from telemetra.domain.timeparse import utcnow
from telemetra.ingest.runner import Source, build_sources, configured_sources, pull_config
from telemetra.ingest.sealer import RollupSealer
from telemetra.registry.sessions import SessionService
from telemetra.runtime.lifecycle import Runtime
from telemetra.runtime.services import Services, build_services
from telemetra.settings import Settings
from telemetra.sim.inprocess import run_demo_devices, simulate_alone
from telemetra.store import Store, store_from_settings

logger = logging.getLogger(__name__)
__all__ = ["serve_runtime", "ingest_runtime", "command_runtime", "simulator_lock_path", "pull_sources", "DEMO_TENANT"]

DEMO_TENANT = "demo"
# Partitions are created three months ahead, so a few runs a day are plenty.
UPKEEP_INTERVAL_S = 6 * 3600
MakeSources = Callable[[Services], list[Source]]


def simulator_lock_path(settings: Settings) -> Path:
    """One simulator per database: a lock beside the SQLite file, else in the data folder."""
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///") + ".simulator.lock")
    return Path(settings.data_dir) / "simulator.lock"


@asynccontextmanager
async def serve_runtime(settings: Settings, store: Store | None = None) -> AsyncIterator[Runtime]:
    """Everything `serve` runs beside HTTP; it opens (and later closes) its own store unless one is given."""
    runtime = Runtime(settings, store or store_from_settings(settings), owns_store=store is None)

    async def declare(rt: Runtime) -> None:
        await _store_and_services(rt, migrate=False)  # `serve` migrates before, in its bootstrap
        await _services_beside_ingest(rt)
        await _serving_only(rt)
        await _ingest(
            rt,
            lambda services: (
                build_sources(
                    settings,
                    configured_sources(settings),
                    telemetry=services.telemetry,
                    pipeline=services.pipeline,
                    store=services.store,
                )
                + pull_sources(settings, services)
            ),
        )
        if settings.simulate_devices:
            services = rt.services
            await rt.spawn(
                "demo-devices",
                simulate_alone(
                    simulator_lock_path(settings),
                    run_demo_devices(
                        services.store, services.devices, services.telemetry, DEMO_TENANT, settings.simulate_devices
                    ),
                ),
            )

    async with runtime.running(declare):
        yield runtime


@asynccontextmanager
async def ingest_runtime(
    settings: Settings, make_sources: MakeSources, *, sealer: bool = False
) -> AsyncIterator[Runtime]:
    """The pipeline and the broker sources ``make_sources`` builds, without HTTP (`worker`, `mqtt retire-client`);
    with ``sealer``, the rollup sealer too (every long-running process seals)."""
    runtime = Runtime(settings, store_from_settings(settings), owns_store=True)

    async def declare(rt: Runtime) -> None:
        await _store_and_services(rt, migrate=True)
        await _services_beside_ingest(rt)
        await _ingest(rt, make_sources)
        if sealer:
            await rt.spawn("rollup-sealer", RollupSealer(rt.store, lag_s=settings.rollup_seal_lag_s).run())

    async with runtime.running(declare):
        yield runtime


@asynccontextmanager
async def command_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A migrated store and the services, none of them started: what a short CLI command calls."""
    runtime = Runtime(settings, store_from_settings(settings, pool_size=2), owns_store=True)

    async def declare(rt: Runtime) -> None:
        await _store_and_services(rt, migrate=True)

    async with runtime.running(declare):
        yield runtime


def pull_sources(settings: Settings, services: Services, url: str | None = None) -> list[Source]:
    """The puller of ``url`` (TELEMETRA_PULL_URL by default), when there is one."""
    from telemetra.ingest.sources.pull import PullSource

    config = pull_config(settings, url)
    return [] if config is None else [PullSource(config, services.telemetry, services.tenants, services.devices)]


async def _store_and_services(rt: Runtime, *, migrate: bool) -> None:
    if rt.owns_store:
        await rt.enter("store", rt.store.open, rt.store.close)
        if migrate:
            await rt.store.migrate()
    rt.services = build_services(rt.settings, rt.store)


async def _services_beside_ingest(rt: Runtime) -> None:
    services = rt.services
    await rt.enter("rate limiter", stop=services.limiter.close)
    await rt.enter("activity", services.activity.start, services.activity.stop)
    # A device reported online here gets its queued commands from here.
    await rt.enter("commands", services.commands.start, services.commands.stop)
    # With Redis, stream clients of every `serve` see what this process commits.
    await rt.enter("live feed", services.live.start, services.live.stop)


async def _serving_only(rt: Runtime) -> None:
    from telemetra.alerts.dispatcher import Dispatcher  # delivery code is only needed once serving

    services, settings = rt.services, rt.settings
    await rt.enter("watches", stop=services.watches.stop)
    rt.dispatcher = Dispatcher(
        rt.store,
        interval_s=settings.notify_interval_s,
        backoff_base_s=settings.notify_backoff_base_s,
        max_attempts=settings.notify_max_attempts,
        outbound=services.alerts.outbound,
    )
    await rt.enter("notifications", stop=rt.dispatcher.close)
    # None needs the rule engine or the pipeline started: presence, the one that calls the engine (offline
    # rules), sleeps a round before its first check.
    await rt.spawn("store-upkeep", _upkeep(rt.store, services.sessions))
    await rt.spawn("rollup-sealer", RollupSealer(rt.store, lag_s=settings.rollup_seal_lag_s).run())
    await rt.spawn("notifications", rt.dispatcher.run())
    await rt.spawn("command-expiry", services.commands.run_expiry())
    await rt.spawn("idle-watches", services.watches.run_reaper())
    await rt.spawn("presence", services.presence.run())
    await rt.spawn("credential-epoch", services.credential_epoch.run())


async def _ingest(rt: Runtime, make_sources: MakeSources) -> None:
    services = rt.services
    sources = make_sources(services)
    # Before the first commit: it decides who evaluates what (its share of the devices, the no-data timer).
    await rt.enter("rule engine", services.alerts.engine.start, services.alerts.engine.stop, bounded=True)
    await rt.enter("pipeline", services.pipeline.start, services.pipeline.stop, bounded=True)
    for source in sources:
        await rt.enter(type(source).__name__, source.start, source.stop, bounded=True)


async def _upkeep(store: Store, sessions: SessionService) -> None:
    # At start, then on the schedule: a server restarted more often than the interval still applies retention.
    while True:
        try:
            await store.maintain(utcnow())
            await sessions.sweep()
        except Exception:
            logger.warning("store upkeep failed; will retry", exc_info=True)
        await asyncio.sleep(UPKEEP_INTERVAL_S)

"""create_app: the one place where the HTTP edge is wired to the services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from telemetra import __version__
from telemetra.api.deps import Services
from telemetra.api.errors import install_error_handlers
from telemetra.api.guards import HeaderLimitsMiddleware
from telemetra.api.headers import ResponseHeadersMiddleware
from telemetra.api.metrics import HttpMetricsMiddleware
from telemetra.api.responses import JsonResponse
from telemetra.analytics.service import AnalyticsService
from telemetra.alerts.engine import RuleEngine
from telemetra.alerts.ownership import ShardOwnership
from telemetra.alerts.service import AlertService
from telemetra.commands.runner import build_transport
from telemetra.commands.desired import DesiredStateService
from telemetra.commands.service import CommandService
from telemetra.api.compat import device_login_api, energy_api, hub_watch_api, objects_api
from telemetra.api.routes import (admin, alerts, analytics, channels, commands, device_self, device_state, devices,
                                  health, ingest, keys, rate_limits, rules, stream)
from telemetra.domain.timeparse import utcnow
from telemetra.ingest.pipeline import Pipeline
from telemetra.live.feed import LiveFeed
from telemetra.live.hub import LiveHub
from telemetra.live.redis_bus import RedisBus
from telemetra.live.watches import WatchService
from telemetra.notify.outbound import OutboundPolicy
from telemetra.ingest.runner import Source, build_sources, configured_sources
from telemetra.ingest.sealer import RollupSealer
from telemetra.ingest.service import TelemetryService, limits_from_settings
from telemetra.registry.activity import ActivityRecorder
from telemetra.ratelimit import RateLimiter
from telemetra.ratelimit.policy import RateLimitPolicy
from telemetra.registry.auth import Authenticator
from telemetra.registry.credential_cache import CredentialCache
from telemetra.registry.credential_epoch import CredentialEpochWatcher
from telemetra.registry.device_login import DeviceLogin
from telemetra.registry.devices import DeviceService
from telemetra.registry.keys import KeyService
from telemetra.registry.presence import PresenceMonitor
from telemetra.registry.tenants import TenantService
from telemetra.registry.tokens import TokenCodec
from telemetra.settings import Settings
from telemetra.sim.inprocess import run_demo_devices
from telemetra.store import Store, store_from_settings

logger = logging.getLogger(__name__)
__all__ = ["create_app", "build_services"]

DESCRIPTION = """Telemetra: devices, keys and telemetry.

Authenticate with `X-API-Key`: an **admin** key for `/api/v1/admin/*`, a **tenant** key for the
tenant's devices, a **device** key for `/api/v1/devices/{status,telemetry,config,heartbeat,desired}` and
command acks.
Errors are JSON: `{"error": "<reason>", "code": "<machine code>", "message": "..."}`.
"""


DEMO_TENANT = "demo"
# Partitions are created three months ahead, so a few runs a day are plenty.
UPKEEP_INTERVAL_S = 6 * 3600


async def _upkeep(store: Store) -> None:
    while True:
        await asyncio.sleep(UPKEEP_INTERVAL_S)
        try:
            await store.maintain(utcnow())
        except Exception:
            logger.warning("store upkeep failed; will retry", exc_info=True)


def build_services(settings: Settings, store: Store) -> Services:
    activity = ActivityRecorder(store, settings.activity_flush_interval_s)
    credentials = CredentialCache(settings.auth_cache_ttl_s, follows_epoch=True)
    epoch = CredentialEpochWatcher(store, credentials, settings.auth_epoch_poll_s)  # another process's changes
    keys = KeyService(store, credentials)
    devices = DeviceService(store, credentials)
    pipeline = Pipeline(store, max_batch_messages=settings.ingest_max_batch_messages,
                        flush_interval_s=settings.ingest_flush_interval_ms / 1000,
                        max_queue_messages=settings.ingest_max_queue_messages,
                        writers=settings.ingest_writers, tenant_share=settings.ingest_tenant_share)
    bus = RedisBus(settings.redis_url, settings.redis_channel) if settings.redis_url else None
    live = LiveFeed(LiveHub(settings.stream_buffer_events), bus)
    # First: it only queues (a slow stream never slows ingestion), and streams hear of a commit at once.
    pipeline.add_consumer(live.on_batch)
    engine = RuleEngine(store, silence_interval_s=settings.rules_silence_check_s,
                        ownership=ShardOwnership(store, lease_s=settings.rules_lease_s))
    pipeline.add_consumer(engine.on_batch)  # evaluates the points of its devices, queues the rest for their owner
    telemetry = TelemetryService(store, pipeline, limits_from_settings(settings), credentials)
    transport = build_transport(settings)
    commands = CommandService(store, transport, default_offline_after_s=settings.online_window_s,
                              send_topic=settings.send_command_topic,
                              expiry_interval_s=settings.command_expiry_check_s)
    telemetry.on_connection(commands.on_connection)  # a device back online gets what waited for it
    presence = PresenceMonitor(store, default_offline_after_s=settings.online_window_s,
                               check_interval_s=settings.presence_check_s)
    telemetry.on_connection(presence.on_connection)
    presence.subscribe(engine.on_presence)  # offline rules
    limiter = RateLimiter(settings.redis_url, settings.rate_limit_namespace)
    login = DeviceLogin(store, TokenCodec(settings), limiter, activity, settings)
    # Where webhooks and mail may go: checked when a channel is created and at every delivery.
    outbound = OutboundPolicy.from_text(settings.outbound_allow, settings.outbound_ca_dir)
    return Services(settings=settings, store=store, activity=activity, auth=Authenticator(store, activity, credentials),
                    keys=keys, tenants=TenantService(store, keys), devices=devices,
                    telemetry=telemetry, pipeline=pipeline, analytics=AnalyticsService(store, devices, settings),
                    alerts=AlertService(store, engine, outbound), commands=commands,
                    desired=DesiredStateService(store, transport), live=live,
                    watches=WatchService(store, live.hub, inactivity_s=settings.watch_inactivity_s,
                                         default_offline_after_s=settings.online_window_s),
                    presence=presence, limiter=limiter, rate_limits=RateLimitPolicy(store, limiter, settings),
                    login=login, credential_epoch=epoch, started_at=utcnow())


async def stop_ingest(services: Services, sources: list[Source]) -> None:
    """Stop taking messages, commit what is queued, then finish evaluating it: the order that loses nothing.
    Shared by `serve` and `worker`, so that a part added later is stopped in both. The sources and the
    pipeline share one deadline (``TELEMETRA_INGEST_STOP_TIMEOUT_S``): what is not committed by then is left
    unacknowledged, for the broker to send again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.ingest_stop_timeout_s
    for source in sources:
        await source.stop(max(0.0, deadline - loop.time()))
    await services.pipeline.stop(max(0.0, deadline - loop.time()))
    await services.alerts.engine.stop(max(0.0, deadline - loop.time()))


async def stop_services(services: Services) -> None:
    """Stop what runs beside ingest: the live feed, the command transport, the activity flush (the stops
    before it may still note activity), and the rate limiter's connections."""
    await services.live.stop()
    await services.commands.stop()
    await services.activity.stop()
    await services.limiter.close()


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the ASGI app; it opens (and later closes) its own store unless one is given."""
    owns_store = store is None
    the_store = store or store_from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_store:
            await the_store.open()
        services = build_services(settings, the_store)
        app.state.services = services
        services.activity.start()
        await services.alerts.engine.start()  # before the first commit: it decides who evaluates what
        services.pipeline.start()
        sources = []
        try:
            await services.commands.start()
            await services.live.start()
            for source in build_sources(settings, services, configured_sources(settings)):
                await source.start()
                sources.append(source)
        except BaseException:
            # A transport or source that cannot start (its broker's certificate refused) fails the start; what
            # was started is stopped, or the store's threads would keep the process alive.
            await stop_ingest(services, sources)
            await stop_services(services)
            if owns_store:
                await the_store.close()
            raise
        simulator = None
        if settings.simulate_devices:
            simulator = asyncio.get_running_loop().create_task(
                run_demo_devices(services, DEMO_TENANT, settings.simulate_devices), name="demo-devices")
        upkeep = asyncio.get_running_loop().create_task(_upkeep(the_store), name="store-upkeep")
        sealer = RollupSealer(the_store, lag_s=settings.rollup_seal_lag_s)
        from telemetra.alerts.dispatcher import Dispatcher  # delivery code is only needed once serving

        dispatcher = Dispatcher(the_store, interval_s=settings.notify_interval_s,
                                backoff_base_s=settings.notify_backoff_base_s,
                                max_attempts=settings.notify_max_attempts, outbound=services.alerts.outbound)
        background = [upkeep,
                      asyncio.get_running_loop().create_task(sealer.run(), name="rollup-sealer"),
                      asyncio.get_running_loop().create_task(dispatcher.run(), name="notifications"),
                      asyncio.get_running_loop().create_task(services.commands.run_expiry(), name="command-expiry"),
                      asyncio.get_running_loop().create_task(services.watches.run_reaper(), name="idle-watches"),
                      asyncio.get_running_loop().create_task(services.presence.run(), name="presence"),
                      asyncio.get_running_loop().create_task(services.credential_epoch.run(), name="credential-epoch")]
        app.state.dispatcher = dispatcher
        logger.info("telemetra %s serving on %s", __version__, the_store.backend)
        try:
            yield
        finally:
            if simulator is not None:
                simulator.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await simulator
            await stop_ingest(services, sources)
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await dispatcher.close()
            await services.watches.stop()
            await stop_services(services)
            if owns_store:
                await the_store.close()

    app = FastAPI(title="Telemetra", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  default_response_class=JsonResponse)
    install_error_handlers(app)
    # The last added runs first: metrics see everything, every answer (a 431 too) gets the security headers.
    app.add_middleware(HeaderLimitsMiddleware, max_header_bytes=settings.max_header_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off unless configured: a browser page elsewhere must not use a key it got hold of
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["X-API-Key", "Content-Type", "Authorization", "token"],
                           expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                                           "RateLimit-Reset"])
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware)
    ingest.add_ingest_routes(app)  # first: the busiest routes are matched at the first try
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(rate_limits.router)
    # Fixed device routes (/status, /telemetry, ...) come before /{device_id}: ids never take those names.
    app.include_router(device_self.router)
    app.include_router(commands.device_router)
    app.include_router(device_state.device_router)
    app.include_router(devices.router)
    app.include_router(commands.router)
    app.include_router(device_state.router)
    app.include_router(stream.router)
    app.include_router(keys.router)
    app.include_router(analytics.router)
    app.include_router(energy_api.router)
    app.include_router(objects_api.router)
    app.include_router(hub_watch_api.router)
    app.include_router(device_login_api.router)
    app.include_router(rules.router)
    app.include_router(alerts.router)
    app.include_router(channels.router)
    return app

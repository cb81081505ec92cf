"""create_app: the HTTP edge (middleware, routes, error handlers) over the services the runtime runs."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from telemetra import __version__
from telemetra.api.compat import device_login_api, energy_api, hub_watch_api, objects_api
from telemetra.api.errors import install_error_handlers
from telemetra.api.guards import HeaderLimitsMiddleware
from telemetra.api.headers import ResponseHeadersMiddleware
from telemetra.api.metrics import HttpMetricsMiddleware
from telemetra.api.openapi import install_openapi
from telemetra.api.responses import JsonResponse
from telemetra.api.routes import (
    admin,
    admin_users,
    alerts,
    analytics,
    channels,
    commands,
    device_edit,
    device_self,
    device_state,
    devices,
    fleet,
    health,
    ingest,
    keys,
    rate_limits,
    rules,
    series,
    session,
    stream,
    users,
)
from telemetra.runtime import serve_runtime
from telemetra.settings import Settings
from telemetra.store import Store

logger = logging.getLogger(__name__)
__all__ = ["create_app"]

DESCRIPTION = """Telemetra: devices, keys and telemetry.

Authenticate with `X-API-Key`: an **admin** key for `/api/v1/admin/*`, a **tenant** key for the
tenant's devices, a **device** key for `/api/v1/devices/{status,telemetry,config,heartbeat,desired}` and
command acks. People sign in at `POST /api/v1/session` and are then carried by the `telemetra_session`
cookie wherever a tenant key is taken, as their role allows; a request that changes something carries the
`X-CSRF-Token` header too.
Errors are JSON: `{"error": "<reason>", "code": "<machine code>", "message": "..."}`.
"""


def create_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """Build the ASGI app; its lifespan runs the services (``serve_runtime``), which open (and later close) their
    own store unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve_runtime(settings, store) as runtime:
            app.state.services = runtime.services
            app.state.dispatcher = runtime.dispatcher
            logger.info("telemetra %s serving on %s", __version__, runtime.store.backend)
            objects_api.warn_if_open(settings)
            yield

    # /docs and /redoc from files inside the installed package: they work on a closed network.
    app = FastAPIOffline(
        title="Telemetra",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=JsonResponse,
        # The framework's own OpenTelemetry hooks would look up the global tracer, meter and logger providers
        # on every request (a few percent of an ingest request's CPU); Telemetra exports Prometheus metrics
        # and logs of its own, and installs no OpenTelemetry provider.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    install_openapi(app)
    # The last added runs first: metrics see everything, every answer (a 431 too) gets the security headers.
    app.add_middleware(HeaderLimitsMiddleware, max_header_bytes=settings.max_header_bytes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # off unless configured: a browser page elsewhere must not use a key it got hold of
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "Authorization", "token", "X-CSRF-Token"],
            expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
        )
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware)
    ingest.add_ingest_routes(app)  # first: the busiest routes are matched at the first try
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(admin_users.router)
    app.include_router(rate_limits.router)
    # Fixed device routes (/status, /telemetry, ...) come before /{device_id}: ids never take those names.
    app.include_router(device_self.router)
    app.include_router(commands.device_router)
    app.include_router(device_state.device_router)
    app.include_router(devices.router)
    app.include_router(device_edit.router)
    app.include_router(fleet.router)
    app.include_router(series.router)
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
    app.include_router(session.router)
    app.include_router(users.router)
    return app

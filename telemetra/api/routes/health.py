"""Open routes: health and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from telemetra import __version__
from telemetra.api.answer_schemas import HealthAnswer
from telemetra.api.deps import ServicesDep
from telemetra.api.errors import answer_doc
from telemetra.api.responses import JsonResponse
from telemetra.domain.timeparse import utcnow
from telemetra.errors import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={
        **answer_doc(HealthAnswer, 200, "The database answers."),
        **answer_doc(HealthAnswer, 503, "The database does not answer (with Retry-After)."),
    },
    response_model=None,
    summary="Liveness and database reachability",
)
async def health(services: ServicesDep) -> Any:
    started = time.perf_counter()
    body: dict[str, Any] = {
        "status": "healthy",
        "version": __version__,
        "uptime_s": round((utcnow() - services.started_at).total_seconds(), 1),
        "database": {"backend": services.store.backend, "reachable": True},
    }
    try:
        await services.store.ping()
    except StoreUnavailable:
        body["status"] = "unhealthy"
        body["database"]["reachable"] = False
        return JsonResponse(body, status_code=503, headers={"Retry-After": "5"})
    body["database"]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return body


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

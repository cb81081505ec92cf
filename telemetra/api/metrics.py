"""HTTP metrics for Prometheus, labelled by route template (not raw path: ids would explode cardinality)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HttpMetricsMiddleware", "HTTP_REQUESTS", "HTTP_LATENCY"]

HTTP_REQUESTS = Counter("telemetra_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "telemetra_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# Looking a labelled child up (``labels()``) takes a lock and builds a key each time; the children are kept
# here instead. Methods come from clients: past this many label sets, children are looked up as before.
MAX_KEPT_CHILDREN = 10_000
_requests: dict[tuple[str, str, int], Any] = {}
_latencies: dict[tuple[str, str], Any] = {}


class HttpMetricsMiddleware:
    """Count and time every HTTP request (pure ASGI: no per-request task or body copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            elapsed = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            counter = _requests.get((method, template, status))
            if counter is None:
                counter = HTTP_REQUESTS.labels(method, template, str(status))
                if len(_requests) < MAX_KEPT_CHILDREN:
                    _requests[(method, template, status)] = counter
            latency = _latencies.get((method, template))
            if latency is None:
                latency = HTTP_LATENCY.labels(method, template)
                if len(_latencies) < MAX_KEPT_CHILDREN:
                    _latencies[(method, template)] = latency
            counter.inc()
            latency.observe(elapsed)

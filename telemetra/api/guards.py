"""Refuse oversized request headers before any route runs (bodies are bounded as they stream, in deps)."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HeaderLimitsMiddleware", "MAX_HEADER_COUNT"]

# Real clients send a dozen headers; a hundred leaves room for proxies and tracing.
MAX_HEADER_COUNT = 100


class HeaderLimitsMiddleware:
    """431 with our JSON error when a request has too many headers or too many header bytes."""

    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > self.max_header_bytes:
                await _refuse(send, f"Send at most {MAX_HEADER_COUNT} headers and {self.max_header_bytes} bytes "
                                    "of them.")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, message: str) -> None:
    body = orjson.dumps({"error": "Request Header Fields Too Large", "code": "headers_too_large",
                         "message": message})
    await send({"type": "http.response.start", "status": 431,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

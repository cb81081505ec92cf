"""Refuse, before any route runs, a request head no route can serve: oversized headers (bodies are bounded as
they stream, in deps), or a NUL character in the query string."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HeaderLimitsMiddleware", "MAX_HEADER_COUNT"]

# Real clients send a dozen headers; a hundred leaves room for proxies and tracing.
MAX_HEADER_COUNT = 100


class HeaderLimitsMiddleware:
    """431 with our JSON error when a request has too many headers or too many header bytes; 422 when its
    query string holds a NUL (``%00``), which no query parameter can mean: PostgreSQL refuses it in any text
    (a filter would fail the query: 500), and no stored name or id holds one. A device id in the path is
    left to the routes, which answer it as any unknown device (the store looks no such id up)."""

    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = sum(len(name) + len(value) + 4 for name, value in headers)
            if len(headers) > MAX_HEADER_COUNT or size > self.max_header_bytes:
                await _refuse(
                    send, f"Send at most {MAX_HEADER_COUNT} headers and {self.max_header_bytes} bytes of them."
                )
                return
            if b"%00" in scope["query_string"]:
                await _refuse(
                    send,
                    "A query parameter holds the NUL character (%00), which no parameter accepts; remove it.",
                    status=422,
                    code="invalid_string",
                )
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, message: str, *, status: int = 431, code: str = "headers_too_large") -> None:
    reason = "Unprocessable Entity" if status == 422 else "Request Header Fields Too Large"
    body = orjson.dumps({"error": reason, "code": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})

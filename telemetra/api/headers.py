"""Headers every answer carries: security headers, and the RateLimit-* headers of the request's limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ResponseHeadersMiddleware", "SECURITY_HEADERS"]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# JSON answers never run scripts or load anything; the interactive docs (Swagger UI / ReDoc, served from the
# package by fastapi-offline) run an inline start-up script, so their pages get no CSP here.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")
HSTS = "max-age=31536000"

Raw = list[tuple[bytes, bytes]]


def _raw(headers: dict[str, str]) -> Raw:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


# The four possible sets, encoded once: (docs page?, HTTPS?) -> headers in the order they are added.
_API_ONLY = {"Content-Security-Policy": API_CSP, "Cache-Control": "no-store"}
_DEFAULTS: dict[tuple[bool, bool], Raw] = {
    (docs, https): _raw(
        {**SECURITY_HEADERS, **({} if docs else _API_ONLY), **({"Strict-Transport-Security": HSTS} if https else {})}
    )
    for docs in (False, True)
    for https in (False, True)
}


class ResponseHeadersMiddleware:
    """Pure ASGI: adds headers at the start of the response, without copying the body. A header the answer
    already has is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(scope, message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, _send)


def _with_defaults(scope: Scope, headers: Raw) -> Raw:
    present = {name.lower() for name, _ in headers}
    defaults = _DEFAULTS[(scope["path"].startswith(DOCS_PATHS), scope.get("scheme") == "https")]
    added = [header for header in defaults if header[0] not in present]
    rate_limit = (scope.get("state") or {}).get("rate_limit_headers")
    if rate_limit:
        added += [header for header in _raw(rate_limit) if header[0] not in present]
    return [*headers, *added]

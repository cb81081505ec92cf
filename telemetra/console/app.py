"""create_console_app: the API app plus the console's pages and files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from telemetra.api.app import create_app
from telemetra.settings import Settings
from telemetra.store import Store

__all__ = ["create_console_app", "CONSOLE_CSP", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"
# Scripts and styles only from this server (no inline script, no eval); the page talks to this server only.
# A value a device or a user wrote is put in the page as text, so even a missed case could not run code.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Files revalidate at every load (ETag, 304): a new version is seen at once, an unchanged file costs a round trip.
STATIC_CACHE = "no-cache"
GZIP_MIN_BYTES = 500


class _CachedStatic:
    """The static files with their own Cache-Control (the API's default is no-store)."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", STATIC_CACHE.encode())]
            await send(message)

        await self._files(scope, receive, _send)


def _shell() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


def create_console_app(settings: Settings, store: Store | None = None) -> FastAPI:
    """The API (``create_app``) with the console under /console/ and ``/`` redirecting there."""
    app = create_app(settings, store)
    shell = _shell()  # read once: the package's files do not change while it runs
    page_headers = {"Content-Security-Policy": CONSOLE_CSP, "Cache-Control": "no-store"}

    app.mount(PREFIX + "/static", GZipMiddleware(_CachedStatic(STATIC_DIR), minimum_size=GZIP_MIN_BYTES))

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=302)

    @app.get(PREFIX, include_in_schema=False)
    async def console_bare() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=302)

    # Every page is the same shell; the script draws the page its path names (links work, reloads too).
    @app.get(PREFIX + "/{page:path}", include_in_schema=False)
    async def console_page(page: str) -> HTMLResponse:
        return HTMLResponse(shell, headers=page_headers)

    return app

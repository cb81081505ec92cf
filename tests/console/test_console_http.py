"""The console's HTTP side without a browser: where it lives, its headers, its files, the offline docs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from telemetra.console import CONSOLE_CSP, create_console_app
from telemetra.console.app import STATIC_DIR
from telemetra.settings import Settings
from telemetra.store import Store


@pytest.fixture
def database_url(sqlite_url: str) -> str:  # the pages do not touch the store: one backend is enough
    return sqlite_url


@pytest.fixture
async def console_client(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    application = create_console_app(settings, store)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_root_redirects_to_the_console(console_client: httpx.AsyncClient) -> None:
    for path in ("/", "/console"):
        answer = await console_client.get(path)
        assert answer.status_code == 302 and answer.headers["location"] == "/console/"


@pytest.mark.parametrize("path", ["/console/", "/console/devices/some-id", "/console/rules"])
async def test_every_page_is_the_shell_with_a_strict_csp(console_client: httpx.AsyncClient, path: str) -> None:
    answer = await console_client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CONSOLE_CSP
    assert "unsafe-inline" not in CONSOLE_CSP and "unsafe-eval" not in CONSOLE_CSP
    assert "script-src 'self'" in CONSOLE_CSP and "frame-ancestors 'none'" in CONSOLE_CSP
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    # No inline script or style: everything the shell loads is a file of this server.
    assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text)
    assert "style=" not in answer.text and "<style" not in answer.text
    assert re.findall(r'(?:src|href)="([^"#]+)"', answer.text) == [
        "/console/static/icon.svg",
        "/console/static/console.css",
        "/console/static/js/main.js",
    ]


async def test_static_files_are_compressed_and_revalidated(console_client: httpx.AsyncClient) -> None:
    answer = await console_client.get("/console/static/js/chart.js", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["cache-control"] == "no-cache"
    etag = answer.headers["etag"]
    again = await console_client.get("/console/static/js/chart.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    for sneaky in ("/console/static/../app.py", "/console/static/%2e%2e/app.py", "/console/static/..%2fapp.py"):
        assert "create_console_app" not in (await console_client.get(sneaky)).text
    assert (await console_client.get("/console/static/js/nothing.js")).status_code == 404


def test_no_script_writes_markup() -> None:
    """Values reach the page as text: no innerHTML, outerHTML, insertAdjacentHTML, document.write or eval."""
    for path in STATIC_DIR.rglob("*.js"):
        text = path.read_text()
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert banned not in text, f"{path.name} uses {banned}"


async def test_docs_are_served_from_the_package(console_client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        page = await console_client.get(path)
        assert page.status_code == 200
        assets: list[Any] = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/") for a in assets), assets  # nothing from another host
        for asset in assets:
            if asset.endswith((".js", ".css")):
                assert (await console_client.get(asset)).status_code == 200, asset
